"""The merge schedule: where a backbone merges and with what."""
import pytest
import torch

import mmaction_sttm  # noqa: F401
from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.models.merge_schedule import MergeSchedule


def _schedule(**merger):
    merger.setdefault('layers', (6, 9))
    return MergeSchedule(
        merger, embed_dims=16, depth=12, frames=8, per_frame=196)


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


@pytest.mark.parametrize('merger,key,closest', [
    (dict(type='STTM', alhpa=2), 'alhpa', 'alpha'),
    (dict(type='ToMe', metirc='keys'), 'metirc', 'metric'),
    (dict(type='STTM', stage=('spatial', 'spatial')), 'stage', 'stages'),
    (dict(type='EViT', track_source=True), 'track_source', 'track_sources'),
])
def test_unknown_keys_name_the_key_and_the_closest(merger, key, closest):
    with pytest.raises(TypeError) as err:
        _schedule(**merger)
    message = str(err.value)
    assert '\n' not in message
    assert f"unknown key '{key}'" in message
    assert f"did you mean '{closest}'?" in message
    # The accepted keys are listed: the schedule's and the merger's own.
    for accepted in ('layers', 'stages', 'ratio', 'track_sources', 'type'):
        assert accepted in message


def test_schedule_counts_follow_the_paper():
    assert _schedule().counts == (8 * 98, 392)
    assert _schedule(stages=('spatial', 'spatial')).counts == (784, 8 * 49)
    assert _schedule(stages=('spatiotemporal', ) * 2).counts == (784, 392)
    assert _schedule(layers=(6, ), stages=('spatial', )).counts == (784, )
    assert _schedule(ratio=(0.5, 0.25)).counts == (784, 588)


def test_counts_round_halves_up():
    # 5 and 7 tokens per frame at ratio 0.5: 3 and 4, not banker's 2 and 4.
    for per_frame, kept in ((5, 3), (7, 4)):
        sched = MergeSchedule(
            dict(layers=(1, ), stages=('spatial', )), 8, 2, 1, per_frame)
        assert sched.counts == (kept, )


def test_needs_follow_the_merger_options():
    sched = MergeSchedule(
        dict(type='ToMe', layers=(1, 2), ratio=0.25), 8, 4, 2, 16)
    assert sched.needs(1) == ('keys', ) and sched.needs(3) == ()
    sched = MergeSchedule(
        dict(type='STTM', layers=(1, ), meta_score='cosine'), 8, 4, 2, 16)
    assert sched.needs(1) == ('cls', )


def test_spatial_stage_merges_inside_each_frame_only():
    torch.manual_seed(0)
    sched = MergeSchedule(
        dict(layers=(1, 2), meta_score='cosine'),
        embed_dims=8,
        depth=4,
        frames=4,
        per_frame=16)
    x = torch.randn(2, 64, 8)
    tokens = Tokens.from_patches(
        x, torch.randn(1, 64, 8), 4, track_sources=True)
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
