"""Every merger on a padded batch (videos of different token counts, as
after RLT): one pass over the batch gives each video what it gets alone,
and the padding, whatever it holds, is never picked, kept or pooled."""
import pytest
import torch
from mmaction.utils import register_all_modules

import mmaction_sttm  # noqa: F401
from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.registry import MODELS

register_all_modules()

DIMS = 16
LENGTH = 23
#: Real tokens per video: the full length, the smallest, odd and even.
COUNTS = (LENGTH, 2, 3, 8, 13, 1)
MERGERS = {
    'STTM': dict(ratio=0.6),
    'STTM-cosine': dict(type='STTM', ratio=0.6, meta_score='cosine'),
    'STTM-no-filter': dict(type='STTM', ratio=0.6, meta_filter=False),
    'ToMe': dict(ratio=0.4),
    'EViT': dict(ratio=0.5),
    'EViT-cosine': dict(type='EViT', ratio=0.5, score='cosine'),
    'RandomDrop': dict(ratio=0.6),
    'UniformPool': dict(ratio=0.6),
    'PiToMe': dict(ratio=0.4, metric='tokens'),
    'VidTLDR': dict(ratio=0.4),
}


def _merger(name):
    options = dict(MERGERS[name])
    kind = options.pop('type', name)
    torch.manual_seed(0)
    merger = MODELS.build(dict(type=kind, embed_dims=DIMS, **options))
    merger.init_weights()
    return merger.eval()


def _cues(x, valid):
    """Keys, CLS attention and sharpness as a backbone gives them: from the
    real tokens only (zero on padding)."""
    unit = torch.nn.functional.normalize(x, dim=-1)
    logits = (unit @ unit.transpose(1, 2) / 0.1).masked_fill(
        ~valid[:, None, :], float('-inf'))
    attn = logits.softmax(-1)
    sharpness = torch.special.xlogy(attn, attn).sum(-1) * valid
    # The mean real query's attention.
    queries = valid[..., None].to(attn.dtype)
    cls_attn = (attn * queries).sum(1) / queries.sum(1) * valid
    return dict(keys=x, cls_attn=cls_attn, sharpness=sharpness)


def _batch(seed=0, track=True):
    g = torch.Generator().manual_seed(seed)
    counts = torch.tensor(COUNTS)
    valid = torch.arange(LENGTH)[None] < counts[:, None]
    x = torch.randn(len(COUNTS), LENGTH, DIMS, generator=g)
    pos = torch.randn(len(COUNTS), LENGTH, DIMS, generator=g)
    sizes = (torch.rand(len(COUNTS), LENGTH, generator=g) * 3 + 1) * valid
    # Padding holds large noise: nothing may depend on it.
    x = torch.where(valid[..., None], x, 1e4 * torch.randn_like(x))
    sources = None
    if track:
        sources = torch.eye(LENGTH).expand(len(COUNTS), -1, -1) * valid[:,
                                                                        None]
    return Tokens(x, pos, sizes, sources=sources, counts=counts), valid


@pytest.mark.parametrize('name', sorted(MERGERS))
def test_a_padded_batch_merges_each_video_as_alone(name):
    merger = _merger(name)
    tokens, valid = _batch()
    with torch.no_grad():
        out = merger(tokens, **_cues(tokens.x, valid))
    width = out.x.shape[1]
    assert width == merger.num_outputs(LENGTH)
    assert out.counts.tolist() == [merger.num_outputs(n) for n in COUNTS]
    for b, n in enumerate(COUNTS):
        alone = Tokens(
            tokens.x[b:b + 1, :n],
            tokens.pos[b:b + 1, :n],
            tokens.sizes[b:b + 1, :n],
            sources=torch.eye(LENGTH)[None, :, :n])
        with torch.no_grad():
            ref = merger(alone, **_cues(alone.x, valid[b:b + 1, :n]))
        k = ref.x.shape[1]
        assert int(out.counts[b]) == k
        for field in ('x', 'pos', 'sizes', 'sources'):
            got = getattr(out, field)[b:b + 1]
            want = getattr(ref, field)
            got = got[:, :, :k] if field == 'sources' else got[:, :k]
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        # Padded slots are empty: size zero, no source.
        assert (out.sizes[b, k:] == 0).all()
        assert (out.sources[b, :, k:] == 0).all()
    assert torch.isfinite(out.x).all()


@pytest.mark.parametrize('name', ['STTM', 'ToMe', 'EViT', 'VidTLDR'])
def test_padded_gradients_are_finite_and_the_padding_gets_none(name):
    merger = _merger(name).train()
    tokens, valid = _batch(track=False)
    x = tokens.x.detach().requires_grad_()
    out = merger(tokens.replace(x=x), **_cues(tokens.x, valid))
    (out.x * out.counts.new_ones(1)).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad[~valid] == 0).all()


def test_random_drop_training_never_keeps_padding():
    merger = _merger('RandomDrop').train()
    tokens, valid = _batch(track=True)
    for seed in range(5):
        torch.manual_seed(seed)
        out = merger(tokens, **_cues(tokens.x, valid))
        # Every output is one real token (no padding's noise), and each
        # video's sizes still add up to its own.
        assert out.x.abs().max() < 100
        torch.testing.assert_close(out.sizes.sum(1), tokens.sizes.sum(1))
