"""The registered STTM module and the merge schedule."""
import pytest
import torch

import mmaction_sttm  # noqa: F401
from mmaction_sttm.merging.tokens import Tokens
from mmaction_sttm.models.sttm import STTM, MergeSchedule


def _inputs(batch=3, length=24, dims=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, dims, generator=g)
    pos = torch.randn(1, length, dims, generator=g)
    cls = torch.randn(batch, dims, generator=g)
    return x, pos, cls


def test_outputs_are_convex_combinations_of_inputs():
    x, pos, cls = _inputs()
    merger = STTM(16, ratio=0.5, motion=False).eval()
    y, motion, sizes, _ = merger(x, pos, None, cls)
    assert y.shape == (3, 12, 16) and motion.shape == (3, 12, 16)
    # Every coordinate of a convex combination lies between the inputs'
    # extremes, for appearance and motion alike.
    lo, hi = x.min(1, keepdim=True).values, x.max(1, keepdim=True).values
    assert ((y >= lo - 1e-5) & (y <= hi + 1e-5)).all()
    plo, phi = pos.min(1, keepdim=True).values, pos.max(1, keepdim=True).values
    assert ((motion >= plo - 1e-5) & (motion <= phi + 1e-5)).all()


@pytest.mark.parametrize('with_sizes', [False, True])
def test_sizes_add_up(with_sizes):
    x, pos, cls = _inputs()
    sizes = torch.rand(3, 24) * 3 + 1 if with_sizes else None
    _, _, out, _ = STTM(16)(x, pos, sizes, cls)
    total = sizes.sum(1) if with_sizes else torch.full((3, ), 24.)
    torch.testing.assert_close(out.sum(1), total)
    assert (out > 0).all()


def test_keep_all_with_identity_fusion_passes_tokens_unchanged():
    x, pos, cls = _inputs(length=50)
    merger = STTM(16, ratio=0.001, fuse_init='identity')
    y, motion, sizes, _ = merger(x, pos, None, cls)
    assert merger.num_outputs(50) == 50
    torch.testing.assert_close(y, x)
    torch.testing.assert_close(motion, pos.expand_as(x))
    assert torch.equal(sizes, torch.ones(3, 50))


def test_identity_init_returns_appearance():
    x, pos, cls = _inputs()
    with_motion = STTM(16, fuse_init='identity')
    without = STTM(16, fuse_init='identity', motion=False)
    y1 = with_motion(x, pos, None, cls)[0]
    y2 = without(x, pos, None, cls)[0]
    torch.testing.assert_close(y1, y2)


def test_gradients_reach_phi_and_fuse():
    x, pos, cls = _inputs()
    x.requires_grad_(True)
    merger = STTM(16)
    y, _, _, _ = merger(x, pos, None, cls)
    (y**2).sum().backward()
    for param in (merger.phi.weight, merger.fuse.weight, merger.fuse.bias):
        assert param.grad is not None and param.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0


def test_deterministic_and_batch_independent():
    x, pos, cls = _inputs(batch=4)
    merger = STTM(16).eval()
    with torch.no_grad():
        y1 = merger(x, pos, None, cls)[0]
        y2 = merger(x, pos, None, cls)[0]
        single = [merger(x[i:i + 1], pos, None, cls[i:i + 1])[0]
                  for i in range(4)]
    assert torch.equal(y1, y2)
    torch.testing.assert_close(torch.cat(single), y1, atol=1e-5, rtol=1e-5)


def test_mean_token_fallback_without_cls():
    x, pos, _ = _inputs()
    merger = STTM(16).eval()
    y = merger(x, pos)[0]
    y_mean = merger(x, pos, None, x.mean(1))[0]
    torch.testing.assert_close(y, y_mean)


@pytest.mark.parametrize('kwargs,field', [
    (dict(ratio=0.), 'ratio'),
    (dict(ratio=1.), 'ratio'),
    (dict(ratio=-0.3), 'ratio'),
    (dict(alpha=0.5), 'alpha'),
    (dict(fuse_init='zeros'), 'fuse_init'),
    (dict(tau=0.), 'tau'),
])
def test_bad_module_arguments(kwargs, field):
    with pytest.raises(ValueError, match=field):
        STTM(16, **kwargs)


def _schedule(**merger):
    merger.setdefault('layers', (6, 9))
    return MergeSchedule(merger, embed_dims=16, depth=12, frames=8,
                         per_frame=196)


@pytest.mark.parametrize('merger,field', [
    (dict(ratio=1.5), 'merger.ratio'),
    (dict(ratio=(0.5, 0.)), 'merger.ratio'),
    (dict(alpha=0.9), 'alpha'),
    (dict(layers=(0, 6)), 'merger.layers'),
    (dict(layers=(6, 12)), 'merger.layers'),
    (dict(layers=(9, 6)), 'merger.layers'),
    (dict(layers=(6, 6)), 'merger.layers'),
    (dict(layers=()), 'merger.layers'),
    (dict(stages=('spatial', )), 'merger.stages'),
    (dict(stages=('spatial', 'temporal')), 'merger.stages'),
    (dict(stages=('spatiotemporal', 'spatial')), 'merger.stages'),
    (dict(ratio=0.99), 'too few tokens'),
    (dict(layers=(2, 4, 6, 8, 10), ratio=0.9), 'too few tokens'),
])
def test_bad_schedules_fail_at_build(merger, field):
    with pytest.raises(ValueError, match=field):
        _schedule(**merger)


def test_schedule_counts_follow_the_paper():
    assert _schedule().counts == (8 * 98, 392)
    assert _schedule(stages=('spatial', 'spatial')).counts == (784, 8 * 49)
    assert _schedule(stages=('spatiotemporal', ) * 2).counts == (784, 392)
    assert _schedule(layers=(6, ), stages=('spatial', )).counts == (784, )
    assert _schedule(ratio=(0.5, 0.25)).counts == (784, 588)


def test_spatial_stage_merges_inside_each_frame_only():
    torch.manual_seed(0)
    sched = MergeSchedule(
        dict(layers=(1, 2), track_sources=True), embed_dims=8, depth=4,
        frames=4, per_frame=16)
    x = torch.randn(2, 64, 8)
    tokens = Tokens(x, torch.randn(1, 64, 8), frames=4)
    out = sched(1, tokens, cls=torch.randn(2, 8))
    assert out.x.shape == (2, 32, 8) and out.frames == 4
    src = out.sources.reshape(2, 4, 16, 4, 8)  # patch frame x token frame
    for f in range(4):
        for g in range(4):
            if f != g:
                assert src[:, f, :, g].abs().max() == 0
    # Sources agree with sizes; then the spatio-temporal stage drops frames.
    torch.testing.assert_close(out.sources.sum(1), out.sizes)
    out2 = sched(2, out, cls=torch.randn(2, 8))
    assert out2.frames is None and out2.x.shape == (2, 16, 8)
    torch.testing.assert_close(out2.sources.sum(1), out2.sizes)
    torch.testing.assert_close(out2.sizes.sum(1), torch.full((2, ), 64.))
