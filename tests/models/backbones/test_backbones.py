"""The merging backbones: parity with their parents, shapes, inputs, the
memory of the block before a merge."""
import pytest
import torch
from mmaction.utils import register_all_modules
from tiny_backbones import BACKBONES

import mmaction_sttm  # noqa: F401
from mmaction_sttm.analysis import peak_memory_mib
from mmaction_sttm.registry import MODELS

register_all_modules()

TINY_VIT = dict(
    type='SpaceTimeViT',
    img_size=64,
    patch_size=16,
    num_frames=8,
    embed_dims=64,
    depth=4,
    num_heads=4)
TINY_TSF = dict(
    num_frames=8,
    img_size=64,
    patch_size=16,
    embed_dims=64,
    num_heads=4,
    num_transformer_layers=4)
TINY_MAE = dict(
    img_size=64,
    patch_size=16,
    embed_dims=64,
    depth=4,
    num_heads=4,
    num_frames=8,
    tubelet_size=2)
MERGER = dict(type='STTM', layers=(1, 2), ratio=0.5)


def _build(cfg):
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model.eval()


def _clip(batch=2, frames=8, size=64, seed=1):
    return torch.randn(
        batch,
        3,
        frames,
        size,
        size,
        generator=torch.Generator().manual_seed(seed))


def test_timesformer_baseline_equals_mmaction2():
    ref = _build(dict(type='TimeSformer', **TINY_TSF))
    ours = MODELS.build(dict(type='MergingTimeSformer', **TINY_TSF)).eval()
    ours.load_state_dict(ref.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(
            ours(_clip()), ref(_clip()), atol=1e-5, rtol=1e-5)


def test_videomae_baseline_equals_mmaction2():
    ref = _build(dict(type='VisionTransformer', **TINY_MAE))
    ours = MODELS.build(dict(type='MergingVisionTransformer', **TINY_MAE))
    ours.load_state_dict(ref.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(
            ours.eval()(_clip()), ref(_clip()), atol=1e-5, rtol=1e-5)


def test_timesformer_merging_drops_temporal_attention_after_first_merge():
    model = _build(
        dict(
            type='MergingTimeSformer',
            **TINY_TSF,
            merger=dict(MERGER, layers=(2, 3))))
    layers = model.transformer_layers.layers
    assert not isinstance(layers[1].attentions[0], torch.nn.Identity)
    assert all(
        isinstance(layer.attentions[0], torch.nn.Identity)
        for layer in layers[2:])
    # The parent's checkpoint still loads: only the removed keys are extra.
    parent = MODELS.build(dict(type='TimeSformer', **TINY_TSF)).state_dict()
    result = model.load_state_dict(parent, strict=False)
    assert all('merge.' in k for k in result.missing_keys)
    assert all('attentions.0' in k for k in result.unexpected_keys)


@pytest.mark.parametrize(
    'cfg', [
        TINY_VIT,
        dict(TINY_TSF, type='MergingTimeSformer'),
        dict(TINY_MAE, type='MergingVisionTransformer'),
    ],
    ids=['vit', 'timesformer', 'videomae'])
@pytest.mark.parametrize('prop_attn', [False, True])
def test_merging_forward_backward(cfg, prop_attn):
    model = _build(dict(cfg, merger=MERGER, prop_attn=prop_attn)).train()
    clip = _clip()
    feats, stages = model.forward_tokens(clip)
    sizes = stages[-1].sizes
    torch.testing.assert_close(
        sizes.sum(1), torch.full((2, ), float(stages[0].x.shape[1])))
    out = model(clip)
    assert out.shape == (2, 64) and torch.isfinite(out).all()
    # A random projection: the sum of LayerNorm outputs has no gradient.
    (out * torch.randn_like(out)).sum().backward()
    for merger in model.merge_schedule.mergers.values():
        assert merger.phi.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    'cfg', [
        TINY_VIT,
        dict(TINY_TSF, type='MergingTimeSformer'),
    ],
    ids=['vit', 'timesformer'])
def test_old_schedule_name(cfg, tmp_path):
    """A checkpoint written when the schedule was ``backbone.merge`` loads
    into ``merge_schedule`` (strictly, every merger weight equal), through
    MMEngine's loader; ``.merge`` still answers, with a warning."""
    from mmengine.runner import load_checkpoint
    model = _build(dict(cfg, merger=MERGER))

    def old_name(key):
        if key.startswith('merge_schedule.'):
            return key.replace('merge_schedule.', 'merge.', 1)
        return key

    old = {old_name(k): v for k, v in model.state_dict().items()}
    assert any(k.startswith('merge.mergers.2.') for k in old)
    path = str(tmp_path / 'old.pth')
    torch.save(dict(state_dict=old), path)
    other = _build(dict(cfg, merger=MERGER))
    for p in other.merge_schedule.parameters():
        torch.nn.init.zeros_(p)
    load_checkpoint(other, path, strict=True)
    for key, value in model.state_dict().items():
        assert torch.equal(other.state_dict()[key], value), key
    with pytest.warns(FutureWarning, match='use backbone.merge_schedule'):
        assert other.merge is other.merge_schedule


@pytest.mark.parametrize(
    'cfg', [
        TINY_VIT,
        dict(TINY_TSF, type='MergingTimeSformer'),
        dict(TINY_MAE, type='MergingVisionTransformer'),
    ],
    ids=['vit', 'timesformer', 'videomae'])
def test_inference_is_deterministic_and_batch_independent(cfg):
    model = _build(dict(cfg, merger=MERGER))
    clip = _clip(batch=3)
    with torch.no_grad():
        out = model(clip)
        again = model(clip)
        single = torch.cat([model(clip[i:i + 1]) for i in range(3)])
    assert torch.equal(out, again)
    torch.testing.assert_close(single, out, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('frames', [4, 8, 16])
@pytest.mark.parametrize('kind', ['vit', 'timesformer'])
def test_other_clip_lengths(frames, kind):
    cfg = TINY_VIT if kind == 'vit' else dict(
        TINY_TSF, type='MergingTimeSformer')
    model = _build(dict(cfg, merger=MERGER))
    with torch.no_grad():
        feats, stages = model.forward_tokens(_clip(1, frames))
    assert stages[1].x.shape[1] == frames * 8  # 16 patches -> 8 per frame
    assert stages[2].x.shape[1] == frames * 4


@pytest.mark.parametrize('size', [48, 96])
@pytest.mark.parametrize(
    'cfg', [
        TINY_VIT,
        dict(TINY_TSF, type='MergingTimeSformer'),
        dict(TINY_MAE, type='MergingVisionTransformer'),
    ],
    ids=['vit', 'timesformer', 'videomae'])
def test_other_resolutions_interpolate_positions(cfg, size):
    model = _build(dict(cfg, merger=MERGER))
    with torch.no_grad():
        feats, stages = model.forward_tokens(_clip(1, 8, size))
    per_frame = (size // 16)**2
    assert stages[0].x.shape[1] % per_frame == 0
    assert torch.isfinite(feats).all()


def test_videomae_clear_errors():
    model = _build(dict(TINY_MAE, type='MergingVisionTransformer'))
    with pytest.raises(ValueError, match='num_frames'):
        model(_clip(1, 4))
    with pytest.raises(ValueError, match='return_feat_map'):
        MODELS.build(
            dict(
                TINY_MAE,
                type='MergingVisionTransformer',
                return_feat_map=True,
                merger=MERGER))


def test_bad_input_sizes_name_the_problem():
    model = _build(TINY_VIT)
    with pytest.raises(ValueError, match='patch_size'):
        model(_clip(1, 8, 60))
    with pytest.raises(ValueError, match='img_size'):
        MODELS.build(dict(TINY_VIT, img_size=70))
    with pytest.raises(ValueError, match='merger.layers'):
        MODELS.build(dict(TINY_VIT, merger=dict(layers=(4, ))))
    with pytest.raises(ValueError, match='divided_space_time'):
        MODELS.build(
            dict(
                TINY_TSF,
                type='MergingTimeSformer',
                attention_type='space_only',
                merger=MERGER))


def test_identity_merger_keeps_a_trained_vit_close():
    """Identity initialisation drops STTM into a backbone without changing
    the features before fine-tuning much (the motion features are off)."""
    base = _build(TINY_VIT)
    merged = _build(
        dict(
            TINY_VIT,
            merger=dict(
                MERGER,
                layers=(3, ),
                stages=('spatial', ),
                fuse_init='identity',
                ratio=0.001)))
    merged.load_state_dict(base.state_dict(), strict=False)
    with torch.no_grad():
        torch.testing.assert_close(merged(_clip()), base(_clip()))


def _peak_bytes(fn):
    return peak_memory_mib(fn, torch.device('cpu')) * 2**20


@pytest.mark.parametrize(
    'cfg', [
        TINY_VIT,
        dict(TINY_TSF, type='MergingTimeSformer'),
        dict(TINY_MAE, type='MergingVisionTransformer'),
        dict(
            BACKBONES['timm'],
            model_kwargs=dict(BACKBONES['timm']['model_kwargs'], img_size=64)),
        dict(
            BACKBONES['mmpretrain'],
            vit=dict(BACKBONES['mmpretrain']['vit'], img_size=64)),
    ],
    ids=['vit', 'timesformer', 'videomae', 'timm', 'mmpretrain'])
def test_the_block_before_a_merge_costs_no_extra_inference_memory(cfg):
    """The keys and CLS attention a merger asks for come from the block's
    own queries and keys; those (views of the whole qkv buffer) must be
    released before the MLP, or the inference peak grows by the qkv buffer
    (it did: ViT-B 78 against 60 MiB)."""
    model = _build(dict(cfg, merger=MERGER))
    clip = _clip(batch=4)
    with torch.no_grad():
        cls, tokens = model.embed(clip, False)
        seq = tokens.x if cls is None else torch.cat([cls, tokens.x], 1)
        peaks = {
            need:
            _peak_bytes(
                lambda need=need: model.run_block(0, seq, tokens, None, need))
            for need in ((), ('keys', 'cls_attn'))
        }
    batch, length, dims = seq.shape
    qkv_bytes = 3 * batch * length * dims * 4
    extras_bytes = batch * length * (dims // 4 + 1) * 4  # keys + cls_attn
    assert peaks[('keys', 'cls_attn')] - peaks[()] < \
        extras_bytes + qkv_bytes / 4, (peaks, qkv_bytes)
