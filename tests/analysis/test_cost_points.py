"""The ratio that puts a merger at a cost point, against the FLOP counter
itself."""
import pytest
from mmaction.utils import register_all_modules

from mmaction_sttm.analysis import CostCounter, complexity, ratio_for_cost
from mmaction_sttm.registry import MODELS

register_all_modules()

SHAPE = (1, 3, 8, 32, 32)
MODEL = dict(
    type='Recognizer3D',
    backbone=dict(
        type='SpaceTimeViT',
        img_size=32,
        patch_size=8,
        num_frames=8,
        tubelet_size=2,
        embed_dims=32,
        depth=4,
        num_heads=2),
    cls_head=dict(type='TimeSformerHead', num_classes=4, in_channels=32),
    data_preprocessor=dict(
        type='ActionDataPreprocessor', format_shape='NCTHW'))
ONE_SHOT = dict(layers=(1, 2), stages=('spatial', 'spatiotemporal'))
BIPARTITE = dict(layers=(1, 2, 3), stages=('spatiotemporal', ) * 3)


@pytest.fixture(scope='module')
def counter():
    return CostCounter(MODEL, SHAPE, MODELS.build)


def _flops(merger):
    return complexity(
        MODELS.build(
            dict(MODEL, backbone=dict(MODEL['backbone'], merger=merger))),
        SHAPE)['flops'] / 1e9


@pytest.mark.parametrize('name,schedule,top', [('RandomDrop', ONE_SHOT, 0.95),
                                               ('EViT', ONE_SHOT, 0.95),
                                               ('ToMe', BIPARTITE, 0.5)])
@pytest.mark.parametrize('fraction', [0.8, 0.6])
def test_lands_within_two_percent(counter, name, schedule, top, fraction):
    merger = dict(schedule, type=name)
    point = ratio_for_cost(counter, merger, fraction, top)
    assert abs(point.fraction / fraction - 1) <= 0.02
    # The figure is the counter's own, for the ratio returned.
    direct = _flops(dict(merger, ratio=point.ratio))
    assert point.gflops == pytest.approx(direct, rel=1e-9)
    assert point.fraction == pytest.approx(direct / counter.baseline)


def test_an_unreachable_point_returns_the_most_the_merger_cuts(counter):
    """One bipartite step removes at most half of the tokens: on four
    blocks with merges after blocks 1-3 the model cannot reach -70%."""
    merger = dict(BIPARTITE, type='ToMe')
    point = ratio_for_cost(counter, merger, 0.3, 0.5)
    assert point.ratio == 0.5 and point.counts == (32, 16, 8)
    assert point.fraction > 0.4


def test_a_refused_plan_lowers_the_top_ratio(counter):
    """A ratio that leaves no token per frame is refused by the schedule;
    the solver then takes the largest one it accepts."""
    merger = dict(ONE_SHOT, type='RandomDrop')
    with pytest.raises(ValueError, match='too few tokens'):
        counter.at(merger, 0.99)
    point = ratio_for_cost(counter, merger, 0.05, 0.99)
    assert point.ratio < 0.99 and min(point.counts) >= 1
