"""Tests of ``tools/convert_weights.py`` and
``mmaction_sttm.conversion.weights``.

Every parameter of the image models is randomised (LayerNorm scales and all
biases too), so a mapping that mixes up two tensors of the same shape changes
the features. The image models are real timm / mmpretrain / MMAction2 modules.
ViT-S runs at 224 (the 14x14 position grid of the configs); ViT-B keeps its
architecture (depth 12, width 768, 12 heads) at 64x64 inputs to save CPU time.

What "the same features" means per target:

* ``spacetime-vit``: with ``time_embed`` zero (what a conversion from an
  image model leaves) one frame gives exactly the image model's final CLS
  features. (A static clip of several frames does not: the one CLS key then
  gets less attention mass than the repeated patch keys.)
* ``timesformer``: with ``time_embed`` and ``temporal_fc`` zero, one frame
  and a static clip of two frames both give exactly the image model's CLS
  features: spatial attention runs per frame with the CLS token in each,
  and the temporal branch adds nothing.
* ``videomae-vit`` has no CLS token and pools the mean token, so it cannot
  equal the image model's CLS features. The weaker property checked: a static
  clip equals the image model's own blocks run on its patch tokens *without*
  the CLS token, mean-pooled and passed through its final norm. This checks
  the tubelet inflation, the q/v bias split (the dropped k bias is exact), the
  MLP and norm mapping and the tiled position embedding.
"""
import os.path as osp
from typing import Callable, Dict, Tuple

import pytest
import torch
from mmaction.models.backbones import TimeSformer, VisionTransformer
from mmengine.registry import init_default_scope
from tool_modules import load_tool
from torch import Tensor, nn

import mmaction_sttm  # noqa: F401  (registers the backbones)
from mmaction_sttm.conversion.weights import (convert_checkpoint,
                                              convert_state_dict,
                                              load_state_dict)
from mmaction_sttm.models import MergingTimeSformer, SpaceTimeViT

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ATOL = RTOL = 1e-4

# name -> (timm arch, embed_dims, heads, image size)
ARCHS = {
    'vit-s': ('vit_small_patch16_224', 384, 6, 224),
    'vit-b': ('vit_base_patch16_224', 768, 12, 64),
}


@pytest.fixture(scope='module', autouse=True)
def mmaction_scope() -> None:
    # MMAction2's TimeSformer builds its layers from the registry.
    init_default_scope('mmaction')


def _randomise(model: nn.Module, seed: int) -> nn.Module:
    """Perturb every parameter so that no two same-shaped tensors agree and
    LayerNorms are not identities."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=gen) * 0.05)
    # Some backbones' ``train()`` (mmpretrain's) does not return the module.
    model.eval()
    return model


class ImageModel:
    """An image ViT and the two reference computations of the targets.

    Args:
        model (nn.Module): The image model.
        cls_features (callable): Image ``(1, 3, H, W)`` -> final CLS
            features ``(1, D)``.
        no_cls_features (callable): Image -> mean of the final patch tokens
            computed without the CLS token, through the final norm.
        dims (int): Channels.
        heads (int): Heads.
        img_size (int): Input size.
    """

    def __init__(self, model: nn.Module, cls_features: Callable,
                 no_cls_features: Callable, dims: int, heads: int,
                 img_size: int) -> None:
        self.model = model
        self.cls_features = cls_features
        self.no_cls_features = no_cls_features
        self.dims, self.heads, self.img_size = dims, heads, img_size


def _timm_model(arch: str, seed: int) -> ImageModel:
    import timm
    name, dims, heads, img_size = ARCHS[arch]
    model = _randomise(
        timm.create_model(name, pretrained=False, img_size=img_size), seed)

    def no_cls(img: Tensor) -> Tensor:
        x = model.patch_embed(img) + model.pos_embed[:, 1:]
        for block in model.blocks:
            x = block(x)
        return model.norm(x.mean(1))

    return ImageModel(model, lambda img: model.forward_features(img)[:, 0],
                      no_cls, dims, heads, img_size)


def _mmpretrain_model(seed: int) -> ImageModel:
    from mmpretrain.models import VisionTransformer as MMPretrainViT
    _, dims, heads, img_size = ARCHS['vit-b']
    model = MMPretrainViT(arch='b', img_size=img_size, patch_size=16)
    model.init_weights()
    model = _randomise(model, seed)

    def no_cls(img: Tensor) -> Tensor:
        x = model.patch_embed(img)[0] + model.pos_embed[:, 1:]
        for layer in model.layers:
            x = layer(x)
        return model.ln1(x.mean(1))

    return ImageModel(model, lambda img: model(img)[0], no_cls, dims, heads,
                      img_size)


@pytest.fixture(scope='module')
def sources(tmp_path_factory) -> Dict[str, Tuple[ImageModel, str, str]]:
    """Image models saved as their frameworks save them: name -> (model,
    checkpoint file, src_format)."""
    root = tmp_path_factory.mktemp('sources')
    out = {}
    for arch, seed in (('vit-s', 0), ('vit-b', 1)):
        image = _timm_model(arch, seed)
        path = str(root / f'timm_{arch}.pth')
        # DeiT's release files wrap the state dict under 'model'.
        torch.save(dict(model=image.model.state_dict()), path)
        out[f'timm-{arch}'] = (image, path, 'timm')
    image = _mmpretrain_model(2)
    path = str(root / 'mmpretrain_vit-b.pth')
    # An mmpretrain ImageClassifier checkpoint: backbone + head.
    state = {f'backbone.{k}': v for k, v in image.model.state_dict().items()}
    state['head.layers.head.weight'] = torch.zeros(1000, image.dims)
    state['head.layers.head.bias'] = torch.zeros(1000)
    torch.save(dict(state_dict=state, meta=dict(epoch=1)), path)
    out['mmpretrain-vit-b'] = (image, path, 'mmpretrain')
    return out


def _image(size: int, seed: int = 3) -> Tensor:
    return torch.randn(
        1, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _static_clip(img: Tensor, frames: int) -> Tensor:
    """``(1, 3, H, W)`` -> ``(1, 3, frames, H, W)``, every frame the image."""
    return img.unsqueeze(2).repeat(1, 1, frames, 1, 1)


def _spacetime_vit(image: ImageModel, **kwargs) -> SpaceTimeViT:
    return SpaceTimeViT(
        img_size=image.img_size,
        patch_size=16,
        num_frames=8,
        embed_dims=image.dims,
        depth=12,
        num_heads=image.heads,
        **kwargs)


def _timesformer(image: ImageModel, **kwargs) -> MergingTimeSformer:
    return MergingTimeSformer(
        num_frames=8,
        img_size=image.img_size,
        patch_size=16,
        embed_dims=image.dims,
        num_heads=image.heads,
        **kwargs)


def _videomae(image: ImageModel, frames: int) -> VisionTransformer:
    return VisionTransformer(
        img_size=image.img_size,
        patch_size=16,
        embed_dims=image.dims,
        depth=12,
        num_heads=image.heads,
        num_frames=frames,
        tubelet_size=2,
        use_learnable_pos_emb=True)


@pytest.fixture(scope='module')
def targets() -> Callable[[str, ImageModel], nn.Module]:
    """Target backbones, built once per kind and width (building ViT-B
    dominates the run time); each test loads its weights into them."""
    builders = dict(
        spacetime=_spacetime_vit,
        timesformer=_timesformer,
        videomae=lambda image: _videomae(image, frames=4))
    cache = {}

    def get(kind: str, image: ImageModel) -> nn.Module:
        key = (kind, image.dims, image.img_size)
        if key not in cache:
            cache[key] = builders[kind](image)
        return cache[key]

    return get


def _load(model: nn.Module, path: str) -> Tuple[set, set]:
    """Load strictly except for the reported keys; return (missing,
    unexpected)."""
    result = model.load_state_dict(load_state_dict(path), strict=False)
    return set(result.missing_keys), set(result.unexpected_keys)


@pytest.mark.parametrize('source',
                         ['timm-vit-s', 'timm-vit-b', 'mmpretrain-vit-b'])
@torch.no_grad()
def test_spacetime_vit_equals_image_model(sources, targets, tmp_path, source):
    image, path, src_format = sources[source]
    out = str(tmp_path / 'spacetime.pth')
    notes = convert_checkpoint(path, out, src_format, 'spacetime-vit')
    assert any('head' in note for note in notes)
    img = _image(image.img_size)
    ref = image.cls_features(img)
    if source == 'timm-vit-s':
        # The configs' path: ``pretrained=`` -> MMEngine Pretrained init.
        video = _spacetime_vit(image, pretrained=out)
        video.init_weights()
    else:
        video = targets('spacetime', image)
        missing, unexpected = _load(video, out)
        # Image weights have no temporal embedding; the backbone keeps zeros.
        assert missing == {'time_embed'} and not unexpected
    video.eval()
    assert torch.count_nonzero(video.time_embed) == 0
    torch.testing.assert_close(
        video(_static_clip(img, 1)), ref, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize('source',
                         ['timm-vit-s', 'timm-vit-b', 'mmpretrain-vit-b'])
@torch.no_grad()
def test_timesformer_equals_image_model(sources, targets, tmp_path, source):
    image, path, src_format = sources[source]
    out = str(tmp_path / 'timesformer.pth')
    notes = convert_checkpoint(path, out, src_format, 'timesformer')
    assert any('temporal_fc as zeros' in note for note in notes)
    state = load_state_dict(out)
    for i in range(12):
        layer = f'transformer_layers.layers.{i}.attentions.'
        # Temporal attention initialised as MMAction2's init_weights does.
        torch.testing.assert_close(state[f'{layer}0.attn.in_proj_weight'],
                                   state[f'{layer}1.attn.in_proj_weight'])
        torch.testing.assert_close(state[f'{layer}0.norm.weight'],
                                   state[f'{layer}1.norm.weight'])
        assert torch.count_nonzero(state[f'{layer}0.temporal_fc.weight']) == 0
    img = _image(image.img_size)
    ref = image.cls_features(img)
    if source == 'timm-vit-s':
        # MMAction2's own TimeSformer through its ``pretrained`` argument
        # (TimeSformer.init_weights), one frame.
        mmaction = TimeSformer(
            num_frames=1,
            img_size=image.img_size,
            patch_size=16,
            embed_dims=image.dims,
            num_heads=image.heads,
            pretrained=out)
        mmaction.init_weights()
        torch.testing.assert_close(
            mmaction.eval()(_static_clip(img, 1)), ref, rtol=RTOL, atol=ATOL)
    video = targets('timesformer', image)
    missing, unexpected = _load(video, out)
    assert missing == {'time_embed'} and not unexpected
    video.eval()
    torch.testing.assert_close(
        video(_static_clip(img, 1)), ref, rtol=RTOL, atol=ATOL)
    torch.testing.assert_close(
        video(_static_clip(img, 2)), ref, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize('source',
                         ['timm-vit-s', 'timm-vit-b', 'mmpretrain-vit-b'])
@torch.no_grad()
def test_videomae_vit_equals_image_model_without_cls(sources, targets,
                                                     tmp_path, source):
    """The weaker property (module docstring): no CLS token in VideoMAE."""
    image, path, src_format = sources[source]
    out = str(tmp_path / 'videomae.pth')
    notes = convert_checkpoint(
        path, out, src_format, 'videomae-vit', num_frames=4, tubelet_size=2)
    assert any('not the image model' in note for note in notes)
    video = targets('videomae', image)
    missing, unexpected = _load(video, out)
    assert not missing and not unexpected
    img = _image(image.img_size)
    ref = image.no_cls_features(img)
    # The CLS readout is a different function: make sure the check could
    # tell them apart.
    assert not torch.allclose(ref, image.cls_features(img), atol=1e-2)
    torch.testing.assert_close(
        video.eval()(_static_clip(img, 4)), ref, rtol=RTOL, atol=ATOL)


@torch.no_grad()
def test_videomae_inflation_and_bias_split(sources):
    image, path, src_format = sources['timm-vit-s']
    timm_state = image.model.state_dict()
    state, _ = convert_state_dict(
        load_state_dict(path),
        src_format,
        'videomae-vit',
        num_frames=8,
        tubelet_size=2,
        videomae_pos_embed='sincos')
    kernel = state['patch_embed.projection.weight']
    assert kernel.shape == (384, 3, 2, 16, 16)
    torch.testing.assert_close(
        kernel.sum(2), timm_state['patch_embed.proj.weight'])
    q_bias, k_bias, v_bias = timm_state['blocks.3.attn.qkv.bias'].chunk(3)
    torch.testing.assert_close(state['blocks.3.attn.q_bias'], q_bias)
    torch.testing.assert_close(state['blocks.3.attn.v_bias'], v_bias)
    # 'sincos' keeps VideoMAE's fixed table: no position embedding written.
    assert 'pos_embed' not in state and 'cls_token' not in state


@torch.no_grad()
def test_mmaction_timesformer_2d_source(targets, tmp_path):
    """MMAction2's TimeSformer pretrained file (2D layout: norms.0,
    attentions.0), made here from a space-only TimeSformer, converts to
    both ViT targets with the same function."""
    # Only the sizes of the ViT-S source matter here.
    image = ImageModel(None, None, None, 384, 6, 224)
    space_only = _randomise(
        TimeSformer(
            num_frames=1,
            img_size=224,
            patch_size=16,
            embed_dims=384,
            num_heads=6,
            attention_type='space_only'),
        seed=4)
    src = str(tmp_path / 'timesformer_2d.pth')
    torch.save(space_only.state_dict(), src)
    img = _static_clip(_image(224), 1)
    ref = space_only(img)
    for dst, kind in (('spacetime-vit', 'spacetime'), ('timesformer',
                                                       'timesformer')):
        out = str(tmp_path / f'{dst}.pth')
        convert_checkpoint(src, out, 'mmaction-timesformer', dst)
        video = targets(kind, image)
        missing, unexpected = _load(video, out)
        assert missing == {'time_embed'} and not unexpected
        torch.testing.assert_close(
            video.eval()(img), ref, rtol=RTOL, atol=ATOL)


def test_divided_timesformer_round_trip():
    """A trained divided TimeSformer (temporal attention and time_embed of
    its own) survives mmaction-timesformer -> timesformer unchanged, and
    its spatial attention is what the joint ViT gets."""
    model = _randomise(
        TimeSformer(
            num_frames=4,
            img_size=32,
            patch_size=16,
            embed_dims=48,
            num_heads=2,
            num_transformer_layers=3),
        seed=5)
    state = {f'backbone.{k}': v for k, v in model.state_dict().items()}
    state['cls_head.fc_cls.weight'] = torch.zeros(10, 48)
    out, notes = convert_state_dict(state, 'mmaction-timesformer',
                                    'timesformer')
    assert any('temporal attention from attentions.0' in n for n in notes)
    reference = model.state_dict()
    assert out.keys() == reference.keys()
    for key, value in reference.items():
        torch.testing.assert_close(out[key], value, rtol=0, atol=0)
    joint, notes = convert_state_dict(
        state, 'mmaction-timesformer', 'spacetime-vit', num_frames=8)
    assert any('dropped the temporal attention' in n for n in notes)
    torch.testing.assert_close(
        joint['blocks.2.attn.qkv.weight'],
        reference['transformer_layers.layers.2.attentions.1.attn.'
                  'in_proj_weight'])
    torch.testing.assert_close(
        joint['blocks.2.norm2.weight'],
        reference['transformer_layers.layers.2.ffns.0.norm.weight'])
    # time_embed resampled from 4 to 8 frames, endpoints kept in range.
    assert joint['time_embed'].shape == (1, 8, 48)


def test_converted_weights_load_into_merging_backbones(sources, tmp_path):
    """With STTM the backbones keep every converted weight: only the merge
    modules (and, in MergingTimeSformer, the dropped temporal attention of the
    blocks after the first merge) differ. The mergers, which the image
    checkpoint cannot have, report that in one log line and are not listed
    as missing."""
    image, path, src_format = sources['timm-vit-s']
    merger = dict(
        type='STTM',
        layers=(6, 9),
        stages=('spatial', 'spatiotemporal'),
        ratio=0.5)
    out = str(tmp_path / 'spacetime.pth')
    convert_checkpoint(path, out, src_format, 'spacetime-vit')
    missing, unexpected = _load(_spacetime_vit(image, merger=merger), out)
    assert not unexpected
    assert {k.split('.')[0] for k in missing} == {'time_embed'}
    out = str(tmp_path / 'timesformer.pth')
    convert_checkpoint(path, out, src_format, 'timesformer')
    missing, unexpected = _load(_timesformer(image, merger=merger), out)
    assert {k.split('.')[0] for k in missing} == {'time_embed'}
    # Blocks 7..12 attend globally with their spatial weights only.
    assert unexpected and all(
        int(k.split('.')[2]) >= 6 and '.attentions.0.' in k
        for k in unexpected)


def test_unsupported_sources_are_refused():
    import timm
    layer_scale = timm.create_model(
        'vit_tiny_patch16_224',
        pretrained=False,
        init_values=1e-5,
        img_size=32)
    with pytest.raises(ValueError, match='LayerScale'):
        convert_state_dict(layer_scale.state_dict(), 'timm', 'spacetime-vit')
    plain = timm.create_model(
        'vit_tiny_patch16_224', pretrained=False, img_size=32)
    with pytest.raises(ValueError, match='src_format'):
        convert_state_dict(plain.state_dict(), 'mmpretrain', 'timesformer')
    with pytest.raises(ValueError, match='dst'):
        convert_state_dict(plain.state_dict(), 'timm', 'swin')


def test_cli(sources, tmp_path, capsys):
    tool = load_tool('convert_weights',
                     osp.join(REPO, 'tools', 'convert_weights.py'))
    _, path, _ = sources['timm-vit-s']
    out = tmp_path / 'checkpoints' / 'vit-small-p16_in1k_spacetime-vit.pth'
    tool.main(
        [path,
         str(out), '--src-format', 'timm', '--dst', 'spacetime-vit'])
    printed = capsys.readouterr().out
    assert 'spacetime-vit' in printed and 'time_embed' in printed
    ckpt = torch.load(out, map_location='cpu', weights_only=True)
    assert ckpt['meta']['src_format'] == 'timm'
    assert ckpt['meta']['converted_from'] == osp.basename(path)
    assert 'blocks.11.mlp.fc2.weight' in ckpt['state_dict']
