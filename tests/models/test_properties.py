"""Property-based tests (hypothesis) of STTM, the merge schedule and the
three merging backbones over their arguments and input shapes.

Valid arguments and shapes must run and give finite outputs of the expected
shape; invalid ones must fail at build time or at the first forward with a
ValueError / TypeError whose message names the field or the shape, never with
a NaN or an error from deep inside a tensor operation.
"""
import functools
import math
from typing import List, Optional, Sequence, Tuple

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mmaction.utils import register_all_modules

import mmaction_sttm  # noqa: F401  (registers the models)
from mmaction_sttm.functional.sttm import num_meta_tokens
from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.models.merge_schedule import STAGES, MergeSchedule
from mmaction_sttm.models.mergers.sttm import (FUSE_INITS, META_SCORES,
                                               MIN_TAU, STTM)
from mmaction_sttm.registry import MODELS

register_all_modules()

# Small and fast: every example builds or runs a tiny model on CPU.
PROPERTY = settings(max_examples=25, deadline=None)

finite_ratio = st.floats(0.01, 0.99)
valid_sttm_args = st.fixed_dictionaries(
    dict(
        ratio=finite_ratio,
        alpha=st.floats(1.0, 4.0),
        tau=st.floats(MIN_TAU, 10.0),
        fuse_init=st.sampled_from(FUSE_INITS),
        meta_score=st.sampled_from(META_SCORES),
        meta_filter=st.booleans(),
        motion=st.booleans())).filter(
            # The residual reading adds to the fusion layer's output.
            lambda args: args['motion'] or args['fuse_init'] != 'residual')


def _tokens(batch: int, length: int, dims: int, scale: float, duplicates: bool,
            seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, dims, generator=gen) * scale
    if duplicates and length > 1:
        # Identical tokens: the greedy selection and the correspondence
        # softmax must cope with ties.
        x[:, 1:] = x[:, :1]
    return x


# ----------------------------------------------------------------------
# STTM: valid arguments and shapes


@PROPERTY
@given(
    args=valid_sttm_args,
    batch=st.integers(1, 3),
    length=st.integers(1, 40),
    dims=st.sampled_from([4, 8, 16]),
    scale=st.sampled_from([0.0, 1e-3, 1.0, 1e3]),
    duplicates=st.booleans(),
    with_cls=st.booleans(),
    seed=st.integers(0, 2**16))
@example(
    args=dict(
        ratio=0.5,
        alpha=1.5,
        tau=0.1,
        fuse_init='trunc_normal',
        meta_score='cosine',
        meta_filter=True,
        motion=True),
    batch=2,
    length=1,
    dims=8,
    scale=1.0,
    duplicates=False,
    with_cls=True,
    seed=0)
@example(
    args=dict(
        ratio=0.5,
        alpha=1.5,
        tau=0.1,
        fuse_init='identity',
        meta_score='attention',
        meta_filter=True,
        motion=False),
    batch=2,
    length=2,
    dims=8,
    scale=1.0,
    duplicates=True,
    with_cls=False,
    seed=0)
def test_sttm_valid_arguments_give_finite_outputs(args, batch, length, dims,
                                                  scale, duplicates, with_cls,
                                                  seed):
    torch.manual_seed(seed)
    module = STTM(embed_dims=dims, **args)
    x = _tokens(batch, length, dims, scale, duplicates, seed)
    pos = torch.randn(1, length, dims)
    cls = torch.randn(batch, dims) if with_cls else None
    cls_attn = torch.rand(batch, length).softmax(-1)
    out_tokens = module(
        Tokens(x, pos, torch.ones(batch, length)), cls_attn=cls_attn, cls=cls)
    y, motion, sizes = out_tokens.x, out_tokens.pos, out_tokens.sizes
    out = min(num_meta_tokens(length, args['ratio']), length)
    assert y.shape == (batch, out, dims)
    assert motion.shape == (batch, out, dims)
    assert sizes.shape == (batch, out)
    assert out_tokens.sources is None
    for tensor in (y, motion, sizes):
        assert torch.isfinite(tensor).all()
    # Sizes are positive and account for every input token.
    assert (sizes > 0).all()
    torch.testing.assert_close(
        sizes.sum(-1), torch.full((batch, ), float(length)))


@PROPERTY
@given(
    batch=st.integers(1, 3),
    length=st.integers(1, 30),
    ratio=finite_ratio,
    seed=st.integers(0, 2**16))
def test_sttm_sizes_and_sources_compose(batch, length, ratio, seed):
    # Two merges in a row with sizes and a source map carried along.
    gen = torch.Generator().manual_seed(seed)
    module = STTM(embed_dims=8, ratio=ratio, meta_score='cosine')
    x = torch.randn(batch, length, 8, generator=gen)
    sizes = torch.rand(batch, length, generator=gen) + 0.5
    sources = torch.eye(length).expand(batch, -1, -1)
    once = module(Tokens(x, torch.zeros(1, length, 8), sizes, sources=sources))
    assert once.sources.shape == (batch, length, once.x.shape[1])
    torch.testing.assert_close(once.sizes.sum(-1), sizes.sum(-1))
    twice = module(once)
    sources2 = twice.sources
    assert torch.isfinite(twice.x).all() and torch.isfinite(sources2).all()
    torch.testing.assert_close(twice.sizes.sum(-1), sizes.sum(-1))
    # Every input patch is fully assigned (rows of the source map sum to 1).
    torch.testing.assert_close(sources2.sum(-1), torch.ones(batch, length))


# ----------------------------------------------------------------------
# STTM: invalid arguments and shapes

not_a_number = st.one_of(st.none(), st.text(max_size=3), st.booleans(),
                         st.just(float('nan')), st.just(float('inf')),
                         st.just(-float('inf')))
bad_ratio = st.one_of(not_a_number, st.floats(-10, 0), st.floats(1, 10))
bad_alpha = st.one_of(not_a_number, st.floats(-10, 0.999))
bad_tau = st.one_of(not_a_number, st.floats(-10, MIN_TAU * 0.99))
bad_flag = st.one_of(st.none(), st.integers(), st.text(max_size=3))


@PROPERTY
@given(
    field_value=st.one_of(
        st.tuples(st.just('ratio'), bad_ratio),
        st.tuples(st.just('alpha'), bad_alpha),
        st.tuples(st.just('tau'), bad_tau),
        st.tuples(
            st.just('fuse_init'),
            st.text(max_size=8).filter(lambda s: s not in FUSE_INITS)),
        st.tuples(st.just('meta_filter'), bad_flag),
        st.tuples(st.just('motion'), bad_flag),
        st.tuples(
            st.just('embed_dims'),
            st.one_of(st.integers(-4, 0), st.floats(0.5, 8.5), st.none()))))
def test_sttm_invalid_arguments_fail_at_build(field_value):
    field, value = field_value
    kwargs = dict(embed_dims=8)
    kwargs[field] = value
    with pytest.raises((ValueError, TypeError), match=field):
        STTM(**kwargs)


def _bad_forward_inputs(draw) -> Tuple[str, dict]:
    batch = draw(st.integers(1, 3))
    length = draw(st.integers(1, 12))
    good = dict(
        x=torch.randn(batch, length, 8),
        pos=torch.randn(1, length, 8),
        sizes=torch.ones(batch, length),
        cls_attn=torch.rand(batch, length),
        sources=None)
    field = draw(st.sampled_from(['x', 'pos', 'sizes', 'cls_attn', 'sources']))
    other = draw(st.integers(1, 12))
    bad = {
        'x': [(batch, length, other + 8), (batch, length),
              (batch, length, 8, 1)],
        'pos': [(1, length + other, 8), (batch + other, length, 8),
                (length, 8), (1, length, 8 + other)],
        'sizes': [(batch, length + other), (batch + other, length), (batch, )],
        'cls_attn': [(batch, length + other), (batch + other, length),
                     (length, )],
        'sources': [(batch, length, length + other),
                    (batch + other, length, length), (length, length)],
    }[field]
    good[field] = torch.rand(*draw(st.sampled_from(bad))) + 0.5
    return field, good


@PROPERTY
@given(case=st.composite(_bad_forward_inputs)())
def test_sttm_wrong_shapes_are_named(case):
    field, inputs = case
    module = STTM(embed_dims=8)
    cls_attn = inputs.pop('cls_attn')
    tokens = Tokens(**inputs)
    name = field if field == 'cls_attn' else f'tokens.{field}'
    with pytest.raises(ValueError, match=rf'STTM: {name} must be'):
        module(tokens, cls_attn=cls_attn)


# ----------------------------------------------------------------------
# MergeSchedule: layers x stages x ratio


def _expected_counts(layers: Sequence[int], stages: Sequence[str],
                     ratios: Sequence[float], frames: int,
                     per_frame: int) -> Optional[List[int]]:
    """Token counts after each merge, or None if a merge leaves fewer than
    two tokens per group (an independent model of the schedule)."""
    counts = []
    for stage, ratio in zip(stages, ratios):
        if stage == 'spatial':
            per_frame = num_meta_tokens(per_frame, ratio)
            total = per_frame * frames
        else:
            total = num_meta_tokens(per_frame * frames, ratio)
            per_frame, frames = total, 1
        if per_frame < 2:
            return None
        counts.append(total)
    return counts


@st.composite
def valid_schedules(draw):
    depth = draw(st.integers(2, 12))
    layers = sorted(
        draw(
            st.sets(
                st.integers(1, depth - 1),
                min_size=1,
                max_size=min(3, depth - 1))))
    num_spatial = draw(st.integers(0, len(layers)))
    stages = ['spatial'] * num_spatial + ['spatiotemporal'] * (
        len(layers) - num_spatial)
    ratios = draw(
        st.lists(finite_ratio, min_size=len(layers), max_size=len(layers)))
    frames = draw(st.integers(1, 4))
    per_frame = draw(st.integers(1, 64))
    return depth, layers, stages, ratios, frames, per_frame


@PROPERTY
@given(schedule=valid_schedules(), one_ratio=st.booleans())
def test_schedule_builds_iff_enough_tokens_remain(schedule, one_ratio):
    depth, layers, stages, ratios, frames, per_frame = schedule
    if one_ratio:
        ratios = [ratios[0]] * len(layers)
    merger = dict(
        type='STTM',
        layers=tuple(layers),
        stages=tuple(stages),
        ratio=ratios[0] if one_ratio else tuple(ratios))
    expected = _expected_counts(layers, stages, ratios, frames, per_frame)
    if expected is None:
        with pytest.raises(ValueError, match='merger: too few tokens'):
            MergeSchedule(merger, 8, depth, frames, per_frame)
        return
    plan = MergeSchedule(merger, 8, depth, frames, per_frame)
    assert list(plan.counts) == expected
    assert all(b <= a for a, b in zip(expected, expected[1:]))
    assert len(plan.mergers) == len(layers)


@st.composite
def invalid_schedules(draw):
    depth = 6
    kind = draw(
        st.sampled_from([
            'layer range', 'layer order', 'layer type', 'stage name',
            'stage order', 'stage count', 'ratio count', 'ratio value'
        ]))
    layers, stages, ratio = (2, 4), ('spatial', 'spatiotemporal'), 0.5
    if kind == 'layer range':
        layers = (draw(st.one_of(st.integers(-5, 0), st.integers(depth,
                                                                 20))), )
        stages = ('spatial', )
        field = 'merger.layers'
    elif kind == 'layer order':
        first = draw(st.integers(2, depth - 1))
        layers = (first, draw(st.integers(1, first)))
        field = 'merger.layers'
    elif kind == 'layer type':
        layers = (draw(
            st.one_of(st.floats(1.1, 4.9), st.text(min_size=1),
                      st.just(True))), )
        stages = ('spatial', )
        field = 'merger.layers'
    elif kind == 'stage name':
        stages = ('spatial', draw(st.text().filter(lambda s: s not in STAGES)))
        field = 'merger.stages'
    elif kind == 'stage order':
        stages = ('spatiotemporal', 'spatial')
        field = 'merger.stages'
    elif kind == 'stage count':
        stages = ('spatial', ) * draw(st.sampled_from([1, 3]))
        field = 'merger.stages'
    elif kind == 'ratio count':
        ratio = (0.5, ) * draw(st.sampled_from([1, 3]))
        field = 'merger.ratio'
    else:
        ratio = draw(bad_ratio)
        field = 'merger.ratio'
    return dict(
        type='STTM', layers=layers, stages=stages, ratio=ratio), depth, field


@PROPERTY
@given(case=invalid_schedules())
def test_invalid_schedules_fail_at_build(case):
    merger, depth, field = case
    with pytest.raises(ValueError, match=field.replace('.', r'\.')):
        MergeSchedule(merger, 8, depth, 2, 16)


def test_unknown_merger_type_and_key_are_named():
    with pytest.raises(ValueError, match='merger.type'):
        MergeSchedule(dict(type='NoSuchMerger', layers=(1, )), 8, 4, 2, 16)
    with pytest.raises(TypeError, match='merger: .*colour'):
        MergeSchedule(dict(type='STTM', layers=(1, ), colour=1), 8, 4, 2, 16)


# ----------------------------------------------------------------------
# Backbones: input shapes

PATCH = 8
TINY = {
    'SpaceTimeViT':
    dict(
        img_size=32,
        patch_size=PATCH,
        num_frames=4,
        embed_dims=16,
        depth=3,
        num_heads=2),
    'MergingTimeSformer':
    dict(
        img_size=32,
        patch_size=PATCH,
        num_frames=4,
        embed_dims=16,
        num_heads=2,
        num_transformer_layers=3),
    'MergingVisionTransformer':
    dict(
        img_size=32,
        patch_size=PATCH,
        num_frames=4,
        embed_dims=16,
        depth=3,
        num_heads=2,
        tubelet_size=2),
}
MERGERS = {
    'none':
    None,
    'two-stage':
    dict(type='STTM', layers=(1, 2), ratio=0.5),
    'global':
    dict(
        type='STTM',
        layers=(2, ),
        stages=('spatiotemporal', ),
        ratio=0.7,
        fuse_init='identity'),
}


@functools.lru_cache(maxsize=None)
def backbone(name: str, merger: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = MODELS.build(dict(type=name, merger=MERGERS[merger], **TINY[name]))
    model.init_weights()
    return model.eval()


def _valid_frames(name: str) -> st.SearchStrategy:
    # VideoMAE's position embedding is fixed to num_frames / tubelet_size
    # temporal slots; the other two resample their temporal embedding.
    return st.just(4) if name == 'MergingVisionTransformer' else st.integers(
        1, 6)


@st.composite
def valid_clips(draw):
    name = draw(st.sampled_from(sorted(TINY)))
    merger = draw(st.sampled_from(sorted(MERGERS)))
    shape = (draw(st.integers(1, 2)), 3, draw(_valid_frames(name)),
             PATCH * draw(st.integers(1, 6)), PATCH * draw(st.integers(1, 6)))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    return name, merger, shape, scale


@PROPERTY
@given(case=valid_clips())
def test_backbones_accept_valid_clips(case):
    name, merger, shape, scale = case
    model = backbone(name, merger)
    with torch.no_grad():
        out = model(torch.randn(*shape) * scale)
    assert out.shape == (shape[0], 16)
    assert torch.isfinite(out).all()


@st.composite
def invalid_clips(draw):
    name = draw(st.sampled_from(sorted(TINY)))
    merger = draw(st.sampled_from(sorted(MERGERS)))
    batch, frames, size = 2, 4, 32
    kind = draw(
        st.sampled_from([
            'height', 'width', 'channels', 'ndim', 'empty', 'dtype',
            'not a tensor', 'tubelet'
        ]))
    if kind == 'tubelet' and name != 'MergingVisionTransformer':
        kind = 'height'
    off_patch = st.integers(1, 48).filter(lambda n: n % PATCH != 0)
    x = None
    if kind == 'height':
        shape, match = (batch, 3, frames, draw(off_patch), size), 'patch_size'
    elif kind == 'width':
        shape, match = (batch, 3, frames, size, draw(off_patch)), 'patch_size'
    elif kind == 'channels':
        channels = draw(st.integers(1, 6).filter(lambda c: c != 3))
        shape, match = (batch, channels, frames, size, size), 'channels'
    elif kind == 'ndim':
        shape = draw(
            st.sampled_from([(batch, 3, size, size), (3, frames, size, size),
                             (batch, 3, frames, size, size, 1)]))
        match = '5-D'
    elif kind == 'empty':
        shape = draw(
            st.sampled_from([(0, 3, frames, size, size),
                             (batch, 3, 0, size, size)]))
        match = 'empty'
    elif kind == 'tubelet':
        shape, match = (batch, 3, draw(st.sampled_from([1, 3, 5])), size,
                        size), 'tubelet_size'
    elif kind == 'dtype':
        shape, match = (batch, 3, frames, size, size), 'floating-point'
        x = torch.randint(0, 255, shape, dtype=torch.uint8)
    else:
        shape, match = (batch, 3, frames, size, size), 'tensor'
        x = [torch.randn(3, frames, size, size)] * batch
    if x is None:
        x = torch.randn(*shape)
    return name, merger, x, match


@PROPERTY
@given(case=invalid_clips())
def test_backbones_name_the_problem_with_invalid_clips(case):
    name, merger, x, match = case
    model = backbone(name, merger)
    with torch.no_grad(), pytest.raises((ValueError, TypeError),
                                        match=match) as info:
        model(x)
    assert name in str(info.value)


def test_sttm_tau_floor_prevents_overflow_in_half_precision():
    # Why MIN_TAU: |cos| / tau must stay below float16's maximum.
    assert 1 / MIN_TAU < torch.finfo(torch.float16).max
    assert math.isinf(torch.tensor(1 / 1e-5, dtype=torch.float16).item())
