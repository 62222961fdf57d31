"""The framework-free STTM functions (paper sec. 3.2)."""
import pytest
import torch
import torch.nn.functional as F

from mmaction_sttm.functional.sttm import (correspondence,
                                           most_orthogonal_select,
                                           num_candidates, num_meta_tokens,
                                           select_meta_tokens)


def _naive_select(x_norm: torch.Tensor, num: int, start: int) -> list:
    """Motionformer's definition, written the slow way: each step takes the
    token whose max |cos| to the picked set is smallest."""
    picked = [start]
    sim = (x_norm @ x_norm.T).abs()
    for _ in range(1, num):
        score = sim[:, picked].max(dim=1).values
        score[picked] = float('inf')
        picked.append(int(score.argmin()))
    return picked


def test_counts():
    assert num_meta_tokens(196, 0.5) == 98
    assert num_meta_tokens(784, 0.5) == 392
    assert num_meta_tokens(10, 0.99) == 1
    assert num_candidates(196, 98, 1.5) == 147
    assert num_candidates(10, 8, 1.5) == 10


@pytest.mark.parametrize('batch,length', [(1, 30), (3, 50)])
def test_greedy_selection_matches_definition(batch, length):
    torch.manual_seed(0)
    x = F.normalize(torch.randn(batch, length, 16), dim=-1)
    start = torch.randint(0, length, (batch, ))
    picked = most_orthogonal_select(x, 20, start)
    for b in range(batch):
        assert picked[b].tolist() == _naive_select(x[b], 20, int(start[b]))
        assert len(set(picked[b].tolist())) == 20


def test_selection_never_repeats_duplicates():
    x = F.normalize(torch.ones(1, 6, 4), dim=-1)  # all tokens identical
    picked = most_orthogonal_select(x, 6, torch.tensor([2]))
    assert sorted(picked[0].tolist()) == list(range(6))


def test_meta_filter_keeps_most_attentive_candidates():
    torch.manual_seed(0)
    x = F.normalize(torch.randn(2, 40, 8), dim=-1)
    scores = torch.randn(2, 40)
    meta = select_meta_tokens(x, 10, scores, alpha=1.5, meta_filter=True)
    assert meta.shape == (2, 10)
    assert torch.equal(meta, meta.sort(dim=1).values)
    candidates = most_orthogonal_select(x, 15, scores.argmax(1))
    for b in range(2):
        cand = candidates[b]
        expected = cand[scores[b, cand].topk(10).indices].sort().values
        assert torch.equal(meta[b], expected)
    direct = select_meta_tokens(x, 10, scores, meta_filter=False)
    assert torch.equal(direct, candidates[:, :10].sort(dim=1).values)


def test_correspondence_is_convex_and_conserves_sizes():
    torch.manual_seed(0)
    feats = F.normalize(torch.randn(2, 30, 8), dim=-1)
    meta = torch.tensor([[0, 5, 9, 20], [1, 2, 3, 4]])
    sizes = torch.rand(2, 30) + 0.5
    weights, assign, new_sizes = correspondence(feats, meta, sizes, tau=0.1)
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(1), torch.ones(2, 4))
    torch.testing.assert_close(assign.sum(2), torch.ones(2, 30))
    torch.testing.assert_close(new_sizes.sum(1), sizes.sum(1))


@pytest.mark.parametrize('batch,length,num', [(3, 50, 30), (2, 196, 147),
                                              (1, 7, 7)])
def test_greedy_loops_pick_the_same(batch, length, num):
    """The numpy loop (CPU) picks what the torch loop picks, ties (exact
    duplicates) included; the operator dispatches to it on CPU."""
    from mmaction_sttm.functional.sttm import (fp32_bmm, greedy_select,
                                               greedy_select_numpy,
                                               greedy_select_torch, normalize)
    torch.manual_seed(length)
    x = normalize(torch.randn(batch, length, 16))
    x[:, 3:6] = x[:, :1]
    sim = fp32_bmm(x, x.transpose(1, 2)).abs_()
    sim.diagonal(dim1=1, dim2=2).fill_(float('inf'))
    start = torch.randint(0, length, (batch, ))
    ref = greedy_select_torch(sim, start, num)
    assert torch.equal(greedy_select_numpy(sim, start, num), ref)
    with torch.inference_mode():
        assert torch.equal(greedy_select(sim, start, num), ref)
    assert sorted(ref[0].tolist()) == sorted(set(ref[0].tolist()))


def test_greedy_select_without_custom_op(monkeypatch):
    """torch < 2.4 has no ``torch.library.custom_op``: the selection is then
    a plain function (a graph break under torch.compile) that picks the
    same indices and says so once, in one line."""
    from mmaction_sttm.functional import sttm
    monkeypatch.setattr(sttm, '_compile_note_given', False)
    torch.manual_seed(0)
    x = sttm.normalize(torch.randn(2, 40, 8))
    sim = sttm.fp32_bmm(x, x.transpose(1, 2)).abs_()
    sim.diagonal(dim1=1, dim2=2).fill_(float('inf'))
    start = torch.tensor([0, 5])
    import mmengine.logging
    record = []
    monkeypatch.setattr(mmengine.logging, 'print_log',
                        lambda msg, **kwargs: record.append(msg))
    got = sttm._greedy_select_graph_break(sim, start, 20)
    again = sttm._greedy_select_graph_break(sim, start, 20)
    assert len(record) == 1
    message = record[0]
    assert '\n' not in message and 'torch >= 2.4' in message
    ref = sttm.greedy_select_torch(sim, start, 20)
    assert torch.equal(got, ref) and torch.equal(again, ref)
    # Which one the module uses is decided by the running torch.
    assert sttm.greedy_select.__doc__ == sttm._greedy_select.__doc__
    if hasattr(torch.library, 'custom_op'):
        assert hasattr(sttm.greedy_select, 'register_fake')
