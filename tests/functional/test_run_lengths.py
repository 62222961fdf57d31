"""Run-length tokenization, checked against a direct loop over tubelets."""
import pytest
import torch

from mmaction_sttm.functional.rlt import (pack_order, run_lengths,
                                          tubelet_differences)


def _direct(clip, patch, tubelet, threshold):
    """Keep / length / head of every tubelet by plain Python loops."""
    batch, _, frames, height, width = clip.shape
    steps, gh, gw = frames // tubelet, height // patch, width // patch
    keep, lengths, head = [], [], []
    for b in range(batch):

        def tube(s, i, j):
            return clip[b, :, s * tubelet:(s + 1) * tubelet,
                        i * patch:(i + 1) * patch, j * patch:(j + 1) * patch]

        rep = [[
            s > 0 and float(
                (tube(s, i, j) - tube(s - 1, i, j)).abs().mean()) < threshold
            for i in range(gh) for j in range(gw)
        ] for s in range(steps)]
        k, n, h = [], [], []
        for s in range(steps):
            for p in range(gh * gw):
                k.append(not rep[s][p])
                run = 0
                if not rep[s][p]:
                    run = 1
                    while s + run < steps and rep[s + run][p]:
                        run += 1
                n.append(run)
                first = s
                while rep[first][p]:
                    first -= 1
                h.append(first * gh * gw + p)
        keep.append(k)
        lengths.append(n)
        head.append(h)
    return (torch.tensor(keep), torch.tensor(lengths), torch.tensor(head))


def _clip():
    g = torch.Generator().manual_seed(0)
    clip = torch.randn(3, 2, 8, 8, 12, generator=g)
    clip[0, :, 3:6] = clip[0, :, 2:3]  # frames 2-5 equal: a static stretch
    clip[1, :, :, :4] = clip[1, :, :1, :4]  # the top row of patches static
    clip[2, :, 5] = clip[2, :, 4] + 0.05  # below a threshold of 0.1
    return clip


def test_runs_equal_a_direct_loop():
    clip = _clip()
    for tubelet in (1, 2):
        diffs = tubelet_differences(clip, (4, 4), tubelet)
        assert diffs.shape == (3, 8 // tubelet, 6)
        assert torch.isinf(diffs[:, 0]).all()
        runs = run_lengths(diffs < 0.1)
        keep, lengths, head = _direct(clip, 4, tubelet, 0.1)
        assert torch.equal(runs.keep, keep)
        assert torch.equal(runs.lengths, lengths)
        assert torch.equal(runs.head, head)
        # Every tubelet is in exactly one run.
        assert torch.equal(
            runs.lengths.sum(1), torch.full((3, ), 8 // tubelet * 6))


def test_known_counts():
    keep = run_lengths(tubelet_differences(_clip(), (4, 4), 1) < 0.1).keep
    # 8 frames x 6 patches = 48; video 0 repeats frames 3-5 (18 tubelets),
    # video 1 its top row (3 patches) from frame 1 on (21), video 2 frame 5.
    assert keep.sum(1).tolist() == [30, 27, 42]


def test_pack_order_keeps_order_and_counts():
    keep = torch.tensor([[True, False, True, False], [False, True, True,
                                                      True]])
    order, counts = pack_order(keep)
    assert counts.tolist() == [2, 3]
    assert order[0, :2].tolist() == [0, 2]
    assert order[1, :3].tolist() == [1, 2, 3]


def test_the_ends_pair_against_a_direct_loop():
    """``pairs='ends'`` (the RLT authors' code): one difference per
    tubelet, its last frame against the first frame of the tubelet one step
    earlier, mean over channels and the patch's pixels."""
    clip = _clip()
    ph = pw = 4
    for tubelet in (2, 4):
        diffs = tubelet_differences(clip, (ph, pw), tubelet, pairs='ends')
        steps = 8 // tubelet
        assert torch.isinf(diffs[:, 0]).all()
        for b in range(3):
            for s in range(1, steps):
                last = clip[b, :, s * tubelet + tubelet - 1]
                first = clip[b, :, (s - 1) * tubelet]
                for p in range(6):
                    i, j = divmod(p, 3)
                    window = (slice(None), slice(i * ph, (i + 1) * ph),
                              slice(j * pw, (j + 1) * pw))
                    want = (last[window] - first[window]).abs().mean()
                    assert torch.isclose(diffs[b, s, p], want), (b, s, p)
    # With one frame per tubelet both readings are the same comparison.
    assert torch.equal(
        tubelet_differences(clip, (4, 4), 1, pairs='ends'),
        tubelet_differences(clip, (4, 4), 1))
    with pytest.raises(ValueError, match='pairs must be one of'):
        tubelet_differences(clip, (4, 4), 2, pairs='last')
