"""RLT in the backbones: a batch of videos with different token counts gives
each video the output it gets alone, padded and packed, with every merger
after it; off the shelf (nothing dropped) it is the unreduced model; wrong
configs fail at build time."""
import pytest
import torch
from mmaction.utils import register_all_modules
from tiny_backbones import DIMS, FRAMES, SIZE

import mmaction_sttm  # noqa: F401
from mmaction_sttm.models.backbones import MergingTimmViT
from mmaction_sttm.models.catalog import family
from mmaction_sttm.models.mergers.base import num_kept
from mmaction_sttm.registry import MODELS

register_all_modules()

FAMILIES = ['vit', 'videomae'
            ] + (['timm'] if MergingTimmViT.supports_attn_bias else [])
STAGES = ('spatiotemporal', 'spatiotemporal')
MERGERS = {
    'none': None,
    'sttm': dict(type='STTM', layers=(1, 2), stages=STAGES, ratio=0.4),
    'tome': dict(type='ToMe', layers=(1, 2), stages=STAGES, ratio=0.3),
    'evit': dict(type='EViT', layers=(1, ), stages=STAGES[:1], ratio=0.4),
    'drop':
    dict(type='RandomDrop', layers=(1, ), stages=STAGES[:1], ratio=0.4),
    'pool':
    dict(type='UniformPool', layers=(2, ), stages=STAGES[:1], ratio=0.5),
    'pitome': dict(type='PiToMe', layers=(1, 2), stages=STAGES, ratio=0.3),
    'vidtldr':
    dict(type='VidTLDR', layers=(1, ), stages=STAGES[:1], ratio=0.4),
}


def _clips() -> torch.Tensor:
    """Three videos: nothing, half, and the top half of every frame after
    the first static."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 3, FRAMES, SIZE, SIZE, generator=g)
    x[1, :, 2:] = x[1, :, :2]  # the second tubelet of 2 frames repeats
    x[1, :, 1] = x[1, :, 0]
    x[1, :, 3] = x[1, :, 2]
    x[2, :, :, :SIZE // 2] = x[2, :, :1, :SIZE // 2]  # top half static
    return x


def _build(name, reducer=None, merger=None, prop_attn=False, batching=None):
    cfg = family(name).tiny(DIMS, FRAMES, SIZE)
    cfg.update(reducer=reducer, merger=merger, prop_attn=prop_attn)
    if batching is not None:
        cfg.update(batching=batching)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    with torch.no_grad():  # a trained-looking model: nothing at zero
        for param in model.parameters():
            param.add_(0.02 * torch.randn_like(param))
    return model.eval()


@pytest.mark.parametrize('merger', sorted(MERGERS))
@pytest.mark.parametrize('mode', ['padded', 'packed'])
@pytest.mark.parametrize('name', FAMILIES)
def test_batch_equals_one_at_a_time(name, mode, merger):
    model = _build(
        name,
        dict(type='RLT', threshold=0.05),
        MERGERS[merger],
        prop_attn=merger == 'tome',
        batching=mode)
    x = _clips()
    with torch.no_grad():
        _, stages = model.forward_tokens(x)
        counts = stages[0].counts.tolist()
        assert len(set(counts)) == 3, counts  # three different lengths
        batched = model(x)
        alone = torch.cat([model(x[i:i + 1]) for i in range(3)])
    # vid-TLDR's saliency rescales the sharpness twice by its spread, which
    # magnifies the float rounding of a padded batch's attention (1e-7)
    # to about 5e-5.
    tol = 2e-4 if merger == 'vidtldr' else 1e-5
    torch.testing.assert_close(batched, alone, rtol=tol, atol=tol)


@pytest.mark.parametrize('name', FAMILIES)
def test_padding_is_never_merged_or_kept(name):
    model = _build(name, dict(type='RLT', threshold=0.05), MERGERS['tome'])
    with torch.no_grad():
        _, stages = model.forward_tokens(_clips(), track_sources=True)
    first = stages[0]
    for before, after in zip(stages, stages[1:]):
        # Each video merges its own real tokens to num_kept(n) tokens ...
        assert after.counts.tolist() == [
            num_kept(n, 0.3) for n in before.counts.tolist()
        ]
        # ... which stand for exactly the tubelets the real ones did.
        torch.testing.assert_close(after.sizes.sum(1), before.sizes.sum(1))
        assert (after.sizes[~after.valid()] == 0).all()
    # Sizes are run lengths: every input tubelet is counted once.
    total = first.sources.shape[1]
    assert first.sizes.sum(1).tolist() == [total] * 3
    # Every input tubelet maps to one real token, never to padding.
    final = stages[-1]
    torch.testing.assert_close(final.sources.sum(-1), torch.ones(3, total))
    assert (final.sources[~final.valid()[:, None].expand_as(final.sources)] ==
            0).all()


@pytest.mark.parametrize('mode', ['padded', 'packed'])
@pytest.mark.parametrize('name', FAMILIES)
def test_off_the_shelf_nothing_dropped_is_the_model(name, mode):
    """Threshold 0 drops nothing; a zero length embedding then leaves the
    trained model's output as it was."""
    plain = _build(name)
    reduced = _build(name, dict(type='RLT', threshold=0.0), batching=mode)
    with torch.no_grad():
        reduced.reducer.length_embed.zero_()
        x = _clips()
        torch.testing.assert_close(reduced(x), plain(x), rtol=1e-5, atol=1e-5)


def test_static_video_keeps_the_first_step_only():
    model = _build('vit', dict(type='RLT', threshold=0.05))
    x = _clips()[:1]
    x[:, :, 1:] = x[:, :, :1]
    with torch.no_grad():
        _, stages = model.forward_tokens(x)
    per_frame = (SIZE // 8)**2
    assert stages[0].counts.tolist() == [per_frame]
    assert stages[0].sizes.tolist() == [[float(FRAMES)] * per_frame]


@pytest.mark.parametrize('reducer, merger, match', [
    (dict(type='RLT', threshold=-1), None, 'reducer.threshold'),
    (dict(type='RLT', sizes='two'), None, 'reducer.sizes'),
    (dict(type='RLT', pairs='last'), None, 'reducer.pairs'),
    (dict(type='RLT', steps=4), None, 'reducer.steps is set by'),
    (dict(type='Pool'), None, "reducer.type must be 'RLT'"),
    (dict(type='RLT'), dict(type='STTM', layers=(1, 2)), "'spatial' merge"),
])
def test_wrong_configs_fail_at_build_time(reducer, merger, match):
    with pytest.raises(ValueError, match=match):
        _build('vit', reducer, merger)


def test_wrong_batching_fails_at_build_time():
    with pytest.raises(ValueError, match='backbone.batching'):
        _build('vit', dict(type='RLT'), batching='nested')


def test_reducer_mode_is_read_as_the_backbones_batching():
    """Configs written before 2026-12 set the layout on the reducer."""
    with pytest.warns(FutureWarning, match='reducer.mode is deprecated'):
        model = _build('vit', dict(type='RLT', mode='packed'))
    assert model.batching == 'packed'
    assert 'mode' not in repr(model.reducer)


def test_unknown_key_is_named():
    with pytest.raises(TypeError, match='reducer: .*treshold'):
        _build('vit', dict(type='RLT', treshold=0.1))


@pytest.mark.parametrize('name, match', [
    ('timesformer', 'divided space-time attention'),
    ('mmpretrain', 'attention bias'),
])
def test_families_without_rlt_refuse_it(name, match):
    with pytest.raises(ValueError, match=match):
        _build(name, dict(type='RLT'))


def test_apply_merger_adds_rlt_to_a_trained_model():
    """The off-the-shelf path in Python gives the config path's model."""
    from mmaction_sttm import apply_merger
    reducer = dict(type='RLT', threshold=0.05)
    merger = MERGERS['tome']
    by_config = _build('vit', reducer, merger, batching='packed')
    plain = _build('vit')
    applied = apply_merger(plain, merger, reducer=reducer, batching='packed')
    assert applied.reducer is not None and plain.reducer is None
    assert applied.batching == 'packed' and plain.batching == 'padded'
    with torch.no_grad():
        applied.reducer.length_embed.copy_(by_config.reducer.length_embed)
        x = _clips()
        torch.testing.assert_close(applied(x), by_config(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="'spatial' merge"):
        apply_merger(
            plain,
            dict(type='STTM', layers=(1, 2)),
            reducer=reducer,
            inplace=True)
    assert plain.reducer is None and plain.merge_schedule is None


@pytest.mark.skipif(
    not hasattr(torch.library, 'custom_op'),
    reason='torch < 2.4: dynamo breaks on more')
@pytest.mark.parametrize('merger', ['none', 'sttm', 'tome'])
@pytest.mark.parametrize('mode', ['padded', 'packed'])
def test_compile_recompiles_a_bounded_number_of_times(mode, merger):
    """Under torch.compile the token count is data: the graph breaks where
    the reducer reads it, never in the blocks, per stage or per video, with
    or without a merger after RLT (a packed backbone runs the padded layout
    under compile). Counts recompile a bounded number of times, not per
    batch: once when a second count is seen (the length becomes dynamic)
    and once for a batch whose longest video keeps every token (a slice of
    the whole dimension is its own guard). Outputs equal eager."""
    from torch._dynamo.utils import counters
    torch._dynamo.reset()
    counters.clear()
    model = _build(
        'vit',
        dict(type='RLT', threshold=0.05),
        MERGERS[merger],
        batching=mode)
    compiled = torch.compile(model, backend='aot_eager')
    graphs = []
    for step in range(7):
        x = _clips()
        for b in range(3):  # the longest video changes from batch to batch
            rows = 8 * ((step + (b == 0)) % 4)
            x[b, :, :, :rows] = x[b, :, :1, :rows]
        with torch.no_grad():
            torch.testing.assert_close(
                compiled(x), model(x), rtol=1e-5, atol=1e-5)
        graphs.append(counters['stats']['unique_graphs'])
    # Steps 0-3 see both kinds of batch; later counts compile nothing.
    assert graphs[3] == graphs[-1], str(graphs)
    torch._dynamo.reset()
    with torch.no_grad():
        report = torch._dynamo.explain(model)(_clips())
    where = {
        frame.filename.split('/')[-1]
        for b in report.break_reasons
        for frame in b.user_stack[-1:]
    }
    assert where <= {'rlt.py'}, where


@pytest.mark.parametrize('kernel', ['bucketed', 'padded', 'nested', 'dense'])
def test_every_packed_kernel_gives_the_padded_output(kernel):
    """Whichever kernel packed attention runs on (the device's choice or
    another), a packed batch computes what the padded batch does. FlexAttention
    is checked against per-video attention in
    tests/functional/test_attention.py only: compiling it for every stage's
    length costs minutes of CPU."""
    from mmaction_sttm.functional.attention import available
    if not available(kernel):
        pytest.skip(f'{kernel} needs a newer torch')
    padded = _build('vit', dict(type='RLT', threshold=0.05), MERGERS['sttm'])
    packed = _build(
        'vit',
        dict(type='RLT', threshold=0.05),
        MERGERS['sttm'],
        batching='packed')
    packed.packed_kernel = kernel
    with torch.no_grad():
        x = _clips()
        torch.testing.assert_close(packed(x), padded(x), rtol=1e-5, atol=1e-5)
