"""Image ViTs of mmpretrain and timm on video: parity with the image model,
weights loaded through each library's own path, and what is refused."""
import pytest
import timm
import torch
from mmaction.utils import register_all_modules

import mmaction_sttm  # noqa: F401
from mmaction_sttm.analysis import complexity
from mmaction_sttm.models.backbones.base import attention_extras
from mmaction_sttm.models.backbones.timm_vit import MergingTimmViT
from mmaction_sttm.registry import MODELS

register_all_modules()

DIMS = 32
TIMM_KWARGS = dict(
    img_size=32, patch_size=8, embed_dim=DIMS, depth=3, num_heads=2)
MMPRETRAIN_VIT = dict(
    type='mmpretrain.VisionTransformer',
    arch=dict(
        embed_dims=DIMS,
        num_layers=3,
        num_heads=2,
        feedforward_channels=2 * DIMS),
    img_size=32,
    patch_size=8)


def _timm(num_frames=1, **kwargs):
    torch.manual_seed(0)
    model = MODELS.build(
        dict(
            type='MergingTimmViT',
            model_name='vit_tiny_patch16_224',
            model_kwargs=kwargs.pop('model_kwargs', TIMM_KWARGS),
            num_frames=num_frames,
            **kwargs))
    model.init_weights()
    return model.eval()


def _mmpretrain(num_frames=1, vit=MMPRETRAIN_VIT, **kwargs):
    torch.manual_seed(0)
    model = MODELS.build(
        dict(
            type='MergingMMPretrainViT',
            vit=vit,
            num_frames=num_frames,
            **kwargs))
    model.init_weights()
    return model.eval()


def _randomise(module):
    """Non-trivial values everywhere (mmpretrain leaves the CLS token at
    zero and the norms at one)."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.1 + param)


def _images(batch=2, size=32):
    return torch.randn(
        batch, 3, size, size, generator=torch.Generator().manual_seed(1))


def test_timm_one_frame_equals_the_image_model():
    model = _timm()
    _randomise(model.vit)
    images = _images()
    with torch.no_grad():
        expected = model.vit.forward_features(images)[:, 0]
        torch.testing.assert_close(
            model(images[:, :, None]), expected, atol=1e-6, rtol=1e-6)


def test_mmpretrain_one_frame_equals_the_image_model():
    model = _mmpretrain()
    _randomise(model.vit)
    images = _images()
    with torch.no_grad():
        expected = model.vit(images)[-1]  # out_type='cls_token'
        torch.testing.assert_close(
            model(images[:, :, None]), expected, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize(
    'build', [_timm, _mmpretrain], ids=['timm', 'mmpretrain'])
def test_frames_attend_jointly_and_time_embed_counts(build):
    model = build(num_frames=2)
    _randomise(model.vit)
    clip = torch.randn(1, 3, 2, 32, 32)
    with torch.no_grad():
        out = model(clip)
        # Joint attention: the CLS output differs from either frame alone.
        for t in range(2):
            assert not torch.allclose(out, model(clip[:, :, t:t + 1]))
        model.time_embed.normal_()
        assert not torch.allclose(out, model(clip))
        # Other clip lengths resample the temporal embedding.
        assert model(torch.randn(1, 3, 4, 32, 32)).shape == (1, DIMS)


def test_timm_weights_load_through_timm(tmp_path):
    # An "ImageNet" checkpoint: another seed, a 1000-class head and a larger
    # input (8 x 8 patches), which timm's checkpoint filter resamples.
    torch.manual_seed(7)
    source = timm.create_model('vit_tiny_patch16_224',
                               **dict(TIMM_KWARGS, img_size=64))
    path = tmp_path / 'vit_tiny_in1k.pth'
    torch.save(source.state_dict(), path)
    model = _timm(pretrained=str(path))  # init_weights() already ran
    loaded = model.vit.state_dict()
    for name, value in source.state_dict().items():
        if name.startswith('head.'):
            assert name not in loaded
        elif name == 'pos_embed':
            assert loaded[name].shape == (1, 1 + 16, DIMS)
            torch.testing.assert_close(loaded[name][:, 0], value[:, 0])
        else:
            assert torch.equal(loaded[name], value), name
    # ... and they are not what a model without weights starts from.
    fresh = _timm().vit.state_dict()
    assert not torch.equal(loaded['blocks.0.attn.qkv.weight'],
                           fresh['blocks.0.attn.qkv.weight'])


def test_mmpretrain_weights_load_through_init_cfg(tmp_path):
    torch.manual_seed(7)
    source = MODELS.build(MMPRETRAIN_VIT)
    _randomise(source)
    path = tmp_path / 'deit_tiny_in1k.pth'
    # An mmpretrain classifier checkpoint: the ViT under 'backbone.'.
    state = {f'backbone.{k}': v for k, v in source.state_dict().items()}
    state['head.layers.head.weight'] = torch.zeros(10, DIMS)
    torch.save(dict(state_dict=state, meta=dict()), path)
    vit = dict(
        MMPRETRAIN_VIT,
        init_cfg=dict(
            type='Pretrained', checkpoint=str(path), prefix='backbone.'))
    loaded = _mmpretrain(vit=vit).vit.state_dict()
    for name, value in source.state_dict().items():
        assert torch.equal(loaded[name], value), name


# timm's blocks take an attention mask from timm 1.0.16 on.
timm_takes_a_bias = pytest.mark.skipif(
    not MergingTimmViT.supports_attn_bias,
    reason=f'timm {timm.__version__} < 1.0.16: Block.forward has no attn_mask')


def test_prop_attn_only_where_blocks_take_a_bias():
    with pytest.raises(ValueError, match='prop_attn'):
        _mmpretrain(prop_attn=True)
    if not MergingTimmViT.supports_attn_bias:
        with pytest.raises(ValueError, match='prop_attn'):
            _timm(prop_attn=True)
        return
    merger = dict(type='ToMe', layers=(1, ), ratio=0.5)
    plain = _timm(num_frames=2, merger=merger)
    prop = _timm(num_frames=2, merger=merger, prop_attn=True)
    clip = torch.randn(1, 3, 2, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(plain(clip), prop(clip))


@pytest.mark.parametrize(
    'model_kwargs', [
        dict(TIMM_KWARGS, reg_tokens=2),
        dict(TIMM_KWARGS, class_token=False, global_pool='avg'),
        dict(TIMM_KWARGS, patch_drop_rate=0.5),
    ],
    ids=['registers', 'no-cls', 'patch-drop'])
def test_timm_refuses_what_it_cannot_wrap(model_kwargs):
    with pytest.raises(ValueError, match='model_'):
        _timm(model_kwargs=model_kwargs)


def test_mmpretrain_needs_a_cls_token():
    vit = dict(MMPRETRAIN_VIT, with_cls_token=False, out_type='avg_featmap')
    with pytest.raises(ValueError, match='vit'):
        _mmpretrain(vit=vit)


MERGER = dict(type='STTM', layers=(1, 2), ratio=0.5)


@pytest.mark.parametrize(
    'build,kwargs', [
        (_timm, {}),
        pytest.param(_timm, dict(prop_attn=True), marks=timm_takes_a_bias),
        (_timm, dict(model_kwargs=dict(TIMM_KWARGS, qk_norm=True))),
        (_mmpretrain, {}),
    ],
    ids=['timm', 'timm-prop-attn', 'timm-qk-norm', 'mmpretrain'])
def test_merge_extras_come_from_the_blocks_own_qkv(build, kwargs):
    """What a merger asks of the block before it (CLS attention, keys),
    taken from the block's own qkv output, equals computing that block's
    queries and keys again from its input (the earlier way), with the
    family's query / key norms and an attention bias."""
    model = build(num_frames=2, merger=MERGER, **kwargs)
    _randomise(model)
    need = ('keys', 'cls_attn')
    clip = torch.randn(
        2, 3, 2, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        cls, tokens = model.embed(clip)
        seq = torch.cat([cls, tokens.x], dim=1)
        bias = torch.randn(2, 1, 1, seq.shape[1]) if model.prop_attn \
            else None
        tapped, extras = model.run_block(0, seq, tokens, bias, need)
        plain = model.block(0, seq, tokens, bias)
        q, k, scale = model.block_qk(0, seq, tokens)
        expected = attention_extras(q, k, scale, bias, True, need,
                                    seq.shape[0])
    torch.testing.assert_close(tapped, plain)
    assert sorted(extras) == sorted(expected) == sorted(need)
    for name in need:
        torch.testing.assert_close(extras[name], expected[name])
    assert model._qk_taps[0].fn is None


def test_timm_costs_what_the_papers_vit_costs_when_merged():
    """The timm wrapper counts the FLOPs of SpaceTimeViT (the same ViT),
    unmerged and merged: the merges' CLS attention comes from the block's
    own queries and keys. Computing them again before each merge added
    2 N D^2 multiply-adds per merge (ViT-B+STTM: 126.24 against 123.46
    GFLOPs)."""
    shape = (1, 3, 4, 32, 32)
    for merger in (None, MERGER):
        vit = MODELS.build(
            dict(
                type='SpaceTimeViT',
                img_size=32,
                patch_size=8,
                num_frames=4,
                embed_dims=DIMS,
                depth=3,
                num_heads=2,
                merger=merger)).eval()
        wrapped = _timm(num_frames=4, merger=merger)
        assert complexity(wrapped, shape)['flops'] == \
            complexity(vit, shape)['flops'], merger
