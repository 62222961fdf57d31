"""Properties every merger (STTM included) must have, and each merger's own
behaviour on inputs whose answer is known."""
import pytest
import torch
import torch.nn.functional as F
from mmaction.utils import register_all_modules

import mmaction_sttm  # noqa: F401
from mmaction_sttm.analysis import complexity
from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.registry import MODELS

register_all_modules()

MERGERS = [
    'STTM', 'ToMe', 'EViT', 'RandomDrop', 'UniformPool', 'PiToMe', 'VidTLDR'
]
DIMS = 16


def _merger(name, ratio=0.5, **options):
    torch.manual_seed(0)
    merger = MODELS.build(
        dict(type=name, embed_dims=DIMS, ratio=ratio, **options))
    merger.init_weights()
    return merger


def _call(merger, x, pos, sizes=None, ref=None, sources=None):
    """One merge through the merger contract, with what the merger needs
    made from the tokens: keys are the tokens themselves, the CLS
    attention is ``softmax(cos(x, ref) / 0.1)`` (the mean token without
    ``ref``), so both rank as the cosine options do, and the sharpness is
    that of the tokens' attention ``softmax(cos(x, x) / 0.1)``.

    Returns:
        tuple: Tokens, positions, sizes and sources after the merge.
    """
    batch, length = x.shape[:2]
    on_grid = sizes is None
    if sizes is None:
        sizes = torch.ones(batch, length)
    centre = x.mean(1) if ref is None else ref
    cls_attn = (F.cosine_similarity(x, centre[:, None], dim=-1) /
                0.1).softmax(-1)
    unit = F.normalize(x, dim=-1)
    attn = (unit @ unit.transpose(1, 2) / 0.1).softmax(-1)
    sharpness = torch.special.xlogy(attn, attn).sum(-1)
    tokens = Tokens(x, pos, sizes, on_grid=on_grid, sources=sources)
    out = merger(
        tokens, keys=x, cls_attn=cls_attn, cls=ref, sharpness=sharpness)
    return out.x, out.pos, out.sizes, out.sources


def _inputs(batch=3, length=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, DIMS, generator=gen)
    pos = torch.randn(1, length, DIMS, generator=gen)
    sizes = torch.rand(batch, length, generator=gen) * 3 + 1
    ref = torch.randn(batch, DIMS, generator=gen)
    # A row-stochastic source map from 2 * length patches.
    sources = torch.rand(batch, 2 * length, length, generator=gen)
    sources = sources / sources.sum(-1, keepdim=True)
    return x, pos, sizes, ref, sources


@pytest.mark.parametrize('name', MERGERS)
@pytest.mark.parametrize('with_sizes', [False, True])
@pytest.mark.parametrize('with_ref', [False, True])
def test_sizes_add_up_and_sources_stay_stochastic(name, with_sizes, with_ref):
    merger = _merger(name).eval()
    x, pos, sizes, ref, sources = _inputs()
    sizes = sizes if with_sizes else None
    ref = ref if with_ref else None
    with torch.no_grad():
        y, pos_out, sizes_out, src_out = _call(merger, x, pos, sizes, ref,
                                               sources)
    num_out = merger.num_outputs(16)
    assert num_out < 16
    assert y.shape == pos_out.shape == (3, num_out, DIMS)
    assert sizes_out.shape == (3, num_out)
    assert (sizes_out > 0).all()
    total = sizes.sum(1) if with_sizes else torch.full((3, ), 16.)
    if getattr(merger, 'weighted_sizes', False):
        # vid-TLDR drops the background it merges away, size and all.
        assert (sizes_out.sum(1) <= total + 1e-4).all()
    else:
        torch.testing.assert_close(sizes_out.sum(1), total)
    assert src_out.shape == (3, 32, num_out)
    torch.testing.assert_close(src_out.sum(-1), torch.ones(3, 32))
    # Without a source map in, none comes out.
    with torch.no_grad():
        assert _call(merger, x, pos, sizes, ref, None)[3] is None


@pytest.mark.parametrize('name', MERGERS)
def test_deterministic_at_inference(name):
    merger = _merger(name).eval()
    x, pos, sizes, ref, sources = _inputs()
    with torch.no_grad():
        first = _call(merger, x, pos, sizes, ref, sources)
        second = _call(merger, x.clone(), pos.clone(), sizes.clone(),
                       ref.clone(), sources.clone())
    for a, b in zip(first, second):
        assert torch.equal(a, b)


@pytest.mark.parametrize('name', MERGERS)
def test_batch_independence(name):
    merger = _merger(name).eval()
    x, pos, sizes, ref, sources = _inputs(batch=4)
    with torch.no_grad():
        batched = _call(merger, x, pos, sizes, ref, sources)
        for i in range(4):
            alone = _call(merger, x[i:i + 1], pos, sizes[i:i + 1],
                          ref[i:i + 1], sources[i:i + 1])
            for a, b in zip(alone, batched):
                torch.testing.assert_close(a[0], b[i], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('name', MERGERS)
def test_gradients_reach_the_tokens(name):
    merger = _merger(name).train()
    x, pos, sizes, ref, _ = _inputs()
    x.requires_grad_(True)
    y = _call(merger, x, pos, sizes, ref)[0]
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def _tiny_vit(name, ratio, stages=('spatial', 'spatiotemporal'), **extra):
    torch.manual_seed(0)
    return MODELS.build(
        dict(
            type='SpaceTimeViT',
            img_size=32,
            patch_size=8,
            num_frames=4,
            embed_dims=DIMS * 2,
            depth=4,
            num_heads=2,
            merger=dict(
                type=name, layers=(1, 2), stages=stages, ratio=ratio,
                **extra)))


@pytest.mark.parametrize('name', MERGERS)
def test_gflops_decrease_with_ratio(name):
    flops = [
        complexity(_tiny_vit(name, ratio), (1, 3, 4, 32, 32))['flops']
        for ratio in (0.2, 0.35, 0.5)
    ]
    assert flops[0] > flops[1] > flops[2] > 0


@pytest.mark.parametrize('name', MERGERS)
@pytest.mark.parametrize(
    'stages', [('spatial', 'spatiotemporal'), ('spatial', 'spatial'),
               ('spatiotemporal', 'spatiotemporal')],
    ids=['two-stage', 'spatial', 'spatiotemporal'])
def test_stages_in_a_backbone(name, stages):
    model = _tiny_vit(name, 0.5, stages, track_sources=True).eval()
    clip = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        _, tokens = model.forward_tokens(clip)
    # 4 frames of 4 x 4 patches; the plan's counts are what comes out.
    assert tuple(t.x.shape[1]
                 for t in tokens[1:]) == model.merge_schedule.counts
    for stage, tok in zip(stages, tokens[1:]):
        if name == 'VidTLDR':  # merged background is dropped
            assert (tok.sizes.sum(1) <= 64 + 1e-4).all()
        else:
            torch.testing.assert_close(
                tok.sizes.sum(1), torch.full((2, ), 64.))
        torch.testing.assert_close(tok.sources.sum(-1), torch.ones(2, 64))
        if stage == 'spatial':
            # A spatial merge never mixes frames: every token's sources lie
            # in its own frame.
            per_frame = tok.x.shape[1] // 4
            src = tok.sources.reshape(2, 4, 16, 4, per_frame)
            off_frame = src.sum(2)  # (B, frame of patch, frame of token)
            mask = ~torch.eye(4, dtype=torch.bool)[None, :, :, None]
            assert off_frame.masked_select(
                mask.expand_as(off_frame)).abs().max() == 0


@pytest.mark.parametrize(
    'name', ['ToMe', 'EViT', 'RandomDrop', 'UniformPool', 'PiToMe', 'VidTLDR'])
def test_no_parameters_and_options_are_validated(name):
    assert not list(_merger(name).parameters())
    for bad in (0, 1, 1.5, -0.1, '0.5', True):
        with pytest.raises(ValueError, match='ratio'):
            _merger(name, ratio=bad)


def test_option_errors_name_the_field():
    with pytest.raises(ValueError, match='fuse_weights'):
        _merger('EViT', fuse_weights='mean')
    with pytest.raises(ValueError, match='tau'):
        _merger('EViT', tau=0)
    with pytest.raises(ValueError, match='grid'):
        _merger('UniformPool', grid='2d')


def test_tome_removes_at_most_half_per_step():
    with pytest.raises(ValueError, match='ratio must be <= 0.5'):
        _merger('ToMe', ratio=0.6)
    # Through the schedule, the error names the merger config.
    with pytest.raises(ValueError, match='merger: ratio'):
        _tiny_vit('ToMe', 0.6)
    # A larger total reduction is a per-layer schedule: ToMe's own usage,
    # here at every block but the last and over all frames at once.
    model = MODELS.build(
        dict(
            type='SpaceTimeViT',
            img_size=32,
            patch_size=8,
            num_frames=4,
            embed_dims=32,
            depth=4,
            num_heads=2,
            merger=dict(
                type='ToMe',
                layers=(1, 2, 3),
                stages=('spatiotemporal', ) * 3,
                ratio=(0.5, 0.4, 0.3)))).eval()
    assert model.merge_schedule.counts == (32, 19, 13)
    with torch.no_grad():
        _, tokens = model.forward_tokens(torch.randn(2, 3, 4, 32, 32))
    assert [t.x.shape[1] for t in tokens] == [64, 32, 19, 13]
    torch.testing.assert_close(tokens[-1].sizes.sum(1), torch.full((2, ), 64.))


def test_tome_merges_the_most_similar_pairs():
    # Tokens 2i (set A) and 2i+1 (set B) are near copies; pairs are
    # orthogonal to each other, so ratio 0.5 must merge exactly each pair.
    base = torch.eye(DIMS)[:8] * 3
    noise = torch.randn(8, DIMS) * 0.01
    x = torch.stack([base, base + noise], dim=1).reshape(1, 16, DIMS)
    pos = torch.arange(16.).reshape(1, 16, 1).expand(1, 16, DIMS)
    sizes = torch.tensor([[1., 3.] * 8])
    y, pos_out, sizes_out, _ = _call(_merger('ToMe').eval(), x, pos, sizes)
    expected = (x[:, 0::2] * 1 + x[:, 1::2] * 3) / 4
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close(sizes_out, torch.full((1, 8), 4.))
    # Positions merge with the same weights, and order is kept.
    torch.testing.assert_close(pos_out[0, :, 0], torch.arange(8.) * 2 + 0.75)


def test_evit_keeps_the_attentive_tokens_and_fuses_the_rest():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 16, DIMS, generator=gen)
    ref = torch.randn(1, DIMS, generator=gen)
    pos = torch.zeros(1, 16, DIMS)
    scores = F.cosine_similarity(x, ref[:, None], dim=-1)[0]
    for fuse_weights in ('attention', 'size'):
        merger = _merger('EViT', ratio=0.75, fuse_weights=fuse_weights)
        y, _, sizes_out, _ = _call(merger, x, pos, None, ref)
        # round(16 * 0.25) = 4 kept in source order, plus the fused token.
        kept = scores.topk(4).indices.sort().values
        fused = torch.ones(16, dtype=torch.bool)
        fused[kept] = False
        assert y.shape[1] == 5
        torch.testing.assert_close(y[0, :4], x[0, kept])
        if fuse_weights == 'size':
            weights = torch.ones(12)
        else:
            weights = (scores[fused] / 0.1).softmax(0)
        expected = (x[0, fused] * weights[:, None]).sum(0) / weights.sum()
        torch.testing.assert_close(y[0, 4], expected)
        torch.testing.assert_close(sizes_out[0],
                                   torch.tensor([1., 1, 1, 1, 12]))
    # Without a CLS token the cosine score uses the mean token.
    merger = _merger('EViT', ratio=0.75, score='cosine')
    with_mean = _call(merger, x, pos, None, x.mean(1))[0]
    torch.testing.assert_close(_call(merger, x, pos, None, None)[0], with_mean)


def test_random_drop_keeps_copies_and_hands_sizes_on():
    merger = _merger('RandomDrop', ratio=0.5)
    x, pos, _, _, _ = _inputs(batch=2)
    merger.eval()
    y, _, sizes_out, _ = _call(merger, x, pos)
    # Inference: evenly spaced floor((i + 1/2) * 16 / 8) = 1, 3, 5, ...
    torch.testing.assert_close(y, x[:, 1::2])
    torch.testing.assert_close(sizes_out[0],
                               torch.tensor([3., 2, 2, 2, 2, 2, 2, 1]))
    merger.train()
    torch.manual_seed(1)
    y1, _, s1, _ = _call(merger, x, pos)
    y2, _, _, _ = _call(merger, x, pos)
    assert not torch.equal(y1, y2)  # a fresh subset per step
    # Every output is one of the inputs, unchanged, and sizes add up.
    dist = torch.cdist(y1, x)
    assert dist.min(-1).values.max() == 0
    torch.testing.assert_close(s1.sum(1), torch.full((2, ), 16.))


def test_uniform_pool_groups_neighbours():
    x = torch.arange(16.).reshape(1, 16, 1).expand(1, 16, DIMS)
    pos = torch.zeros(1, 16, DIMS)
    merger = _merger('UniformPool', ratio=0.5)
    # Untouched 4 x 4 patches into 2 x 4 cells: pairs of rows.
    y = _call(merger, x, pos)[0][0, :, 0]
    torch.testing.assert_close(y, torch.tensor([2., 3, 4, 5, 10, 11, 12, 13]))
    # Once tokens carry sizes, or with grid='sequence': runs of neighbours.
    y = _call(merger, x, pos, torch.ones(1, 16))[0][0, :, 0]
    torch.testing.assert_close(y, torch.arange(8.) * 2 + 0.5)
    y = _call(_merger('UniformPool', ratio=0.5, grid='sequence'), x, pos)[0]
    torch.testing.assert_close(y[0, :, 0], torch.arange(8.) * 2 + 0.5)
