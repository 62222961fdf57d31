"""Converting VideoMAE checkpoints (``tools/convert_weights.py
--src-format videomae | mmaction-videomae --dst videomae-vit``).

The sources are written here in each released layout, from a small
MMAction2 ``VisionTransformer`` whose every parameter is randomised (so a
tensor put in the wrong place changes the features): VideoMAE's fine-tuned
``VisionTransformer`` (MCG-NJU/VideoMAE ``modeling_finetune.py``: ``patch_embed
.proj``, ``blocks.i.mlp.fc1`` / ``fc2``, ``fc_norm``, ``head``, under
``'model'``), its pre-training checkpoint (``encoder.`` beside ``decoder.``,
``encoder_to_decoder`` and ``mask_token``; DeepSpeed's ``'module'``), and
MMAction2's recognizer (``backbone.``, ``cls_head.fc_cls``). The test's own
table of VideoMAE's names (``_to_videomae``) is written from VideoMAE's
modules, independently of the converter's.

Each converted file loads with ``strict=True`` into the zoo's
``MergingVisionTransformer`` (and, with ``--with-head``, into a recognizer)
and gives the source model's features.
"""
import os.path as osp
import re
from typing import Dict

import pytest
import torch
from mmaction.models.backbones import VisionTransformer
from mmengine.registry import init_default_scope
from tool_modules import load_tool
from torch import Tensor

import mmaction_sttm  # noqa: F401  (registers the backbones)
from mmaction_sttm.conversion.weights import (convert_checkpoint,
                                              convert_state_dict,
                                              detect_layout, load_state_dict)
from mmaction_sttm.models import MergingVisionTransformer
from mmaction_sttm.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# Small, with VideoMAE's structure: 4 frames (2 tubelets) at 32x32.
ARCH = dict(
    img_size=32,
    patch_size=16,
    embed_dims=64,
    depth=3,
    num_heads=4,
    num_frames=4,
    tubelet_size=2,
    norm_cfg=dict(type='LN', eps=1e-6))
CLASSES = 5


@pytest.fixture(scope='module')
def source() -> VisionTransformer:
    """MMAction2's VideoMAE ViT with every parameter randomised."""
    model = VisionTransformer(**ARCH)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=gen) * 0.05)
    return model.eval()


@pytest.fixture(scope='module')
def head() -> Dict[str, Tensor]:
    gen = torch.Generator().manual_seed(1)
    return {
        'weight': torch.randn(CLASSES, ARCH['embed_dims'], generator=gen),
        'bias': torch.randn(CLASSES, generator=gen)
    }


def _clip() -> Tensor:
    return torch.randn(
        2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(2))


def _to_videomae(state: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """MMAction2's VisionTransformer weights under VideoMAE's own names
    (its Block: norm1, attn.{qkv, q_bias, v_bias, proj}, norm2, mlp.{fc1,
    fc2}; PatchEmbed.proj; fc_norm); VideoMAE keeps its sinusoidal table
    out of the state dict."""
    out = {}
    for key, value in state.items():
        if key == 'pos_embed':
            continue
        key = key.replace('patch_embed.projection.', 'patch_embed.proj.')
        key = re.sub(r'\.mlp\.layers\.0\.0\.', '.mlp.fc1.', key)
        key = re.sub(r'\.mlp\.layers\.1\.', '.mlp.fc2.', key)
        out[key] = value.clone()
    return out


def _zoo_backbone(**kwargs) -> MergingVisionTransformer:
    return MergingVisionTransformer(**ARCH, **kwargs).eval()


def _features(model, clip: Tensor) -> Tensor:
    with torch.no_grad():
        return model(clip)


def test_videomae_finetuned_checkpoint(source, head, tmp_path):
    state = _to_videomae(source.state_dict())
    assert 'blocks.0.mlp.fc1.weight' in state and 'pos_embed' not in state
    state.update({f'head.{k}': v for k, v in head.items()})
    path = str(tmp_path / 'videomae_ft.pth')
    # VideoMAE's run_class_finetuning.py saves {'model': ..., 'epoch': ...}.
    torch.save(dict(model=state, epoch=34), path)
    assert detect_layout(load_state_dict(path)) == 'videomae'
    out = str(tmp_path / 'converted.pth')
    notes = convert_checkpoint(
        path, out, 'videomae', 'videomae-vit', num_frames=4, img_size=32)
    assert any('sinusoidal pos_embed' in n for n in notes)
    assert any('dropped the classifier' in n for n in notes)
    converted = load_state_dict(out)
    assert detect_layout(converted).startswith('videomae-vit (')
    backbone = _zoo_backbone()
    backbone.load_state_dict(converted, strict=True)
    # MMAction2's own table, bit for bit.
    assert torch.equal(converted['pos_embed'], source.pos_embed)
    torch.testing.assert_close(
        _features(backbone, _clip()), _features(source, _clip()))


def test_videomae_qkv_bias_split_matters(source):
    """Swapping q and v biases (or dropping them) changes the features: the
    equality above can fail."""
    state = _to_videomae(source.state_dict())
    swapped = dict(state)
    swapped['blocks.1.attn.q_bias'] = state['blocks.1.attn.v_bias']
    swapped['blocks.1.attn.v_bias'] = state['blocks.1.attn.q_bias']
    converted, _ = convert_state_dict(
        swapped, 'videomae', 'videomae-vit', num_frames=4, img_size=32)
    backbone = _zoo_backbone()
    backbone.load_state_dict(converted, strict=True)
    assert not torch.allclose(
        _features(backbone, _clip()), _features(source, _clip()), atol=1e-3)


def test_videomae_pretraining_checkpoint(source, tmp_path):
    encoder = _to_videomae(source.state_dict())
    fc_norm = {k: encoder.pop(k) for k in list(encoder) if 'fc_norm' in k}
    state = {f'encoder.{k}': v for k, v in encoder.items()}
    # The pre-training encoder ends in a norm; the decoder and the bridge
    # to it are not part of the fine-tuned model.
    state['encoder.norm.weight'] = fc_norm['fc_norm.weight'] + 1
    state['encoder.norm.bias'] = fc_norm['fc_norm.bias']
    state['encoder_to_decoder.weight'] = torch.zeros(32, ARCH['embed_dims'])
    state['mask_token'] = torch.zeros(1, 1, 32)
    state['decoder.blocks.0.norm1.weight'] = torch.ones(32)
    state['decoder.head.weight'] = torch.zeros(1536, 32)
    path = str(tmp_path / 'checkpoint-1599.pth')
    # DeepSpeed's checkpoints hold the weights under 'module'.
    torch.save(dict(module=state), path)
    assert detect_layout(load_state_dict(path)) == 'videomae'
    converted, notes = convert_state_dict(
        load_state_dict(path),
        'videomae',
        'videomae-vit',
        num_frames=4,
        img_size=32)
    assert any('pre-training' in n and 'decoder' in n for n in notes)
    backbone = _zoo_backbone()
    backbone.load_state_dict(converted, strict=True)
    # fc_norm as VideoMAE's fine-tuning starts it, the encoder unchanged.
    assert torch.equal(converted['fc_norm.weight'],
                       torch.ones(ARCH['embed_dims']))
    assert torch.equal(converted['fc_norm.bias'],
                       torch.zeros(ARCH['embed_dims']))
    for key, value in source.state_dict().items():
        if not key.startswith('fc_norm'):
            assert torch.equal(converted[key], value), key


def _recognizer_config(num_classes: int = CLASSES) -> dict:
    return dict(
        type='Recognizer3D',
        backbone=dict(type='MergingVisionTransformer', **ARCH),
        cls_head=dict(
            type='TimeSformerHead',
            num_classes=num_classes,
            in_channels=ARCH['embed_dims']),
        data_preprocessor=dict(
            type='ActionDataPreprocessor', format_shape='NCTHW'))


def test_mmaction_videomae_checkpoint(source, head, tmp_path):
    state = {f'backbone.{k}': v for k, v in source.state_dict().items()}
    state.update({f'cls_head.fc_cls.{k}': v for k, v in head.items()})
    path = str(tmp_path / 'mmaction_videomae.pth')
    torch.save(dict(state_dict=state, meta=dict(mmaction='1.0')), path)
    assert detect_layout(load_state_dict(path)) == 'mmaction-videomae'

    out = str(tmp_path / 'backbone.pth')
    convert_checkpoint(path, out, 'mmaction-videomae', 'videomae-vit')
    backbone = _zoo_backbone()
    backbone.load_state_dict(load_state_dict(out), strict=True)
    torch.testing.assert_close(
        _features(backbone, _clip()), _features(source, _clip()))

    # --with-head: a recognizer's weights, the classifier kept.
    out = str(tmp_path / 'recognizer.pth')
    notes = convert_checkpoint(
        path, out, 'mmaction-videomae', 'videomae-vit', with_head=True)
    assert any(f'{CLASSES} classes' in n for n in notes)
    init_default_scope('mmaction')
    recognizer = MODELS.build(_recognizer_config()).eval()
    recognizer.load_state_dict(load_state_dict(out), strict=True)
    assert torch.equal(recognizer.cls_head.fc_cls.weight, head['weight'])


def test_zoo_backbone_with_merger_takes_converted_weights(source):
    """A zoo STTM model loads the converted file strictly: every converted
    tensor lands, and the merger (new layers the checkpoint cannot have)
    keeps its init, as the backbone reports in one log line."""
    converted, _ = convert_state_dict(
        _to_videomae(source.state_dict()),
        'videomae',
        'videomae-vit',
        num_frames=4,
        img_size=32)
    merger = dict(
        type='STTM',
        layers=(1, 2),
        stages=('spatial', 'spatiotemporal'),
        ratio=0.5,
        fuse_init='orthogonal')
    backbone = _zoo_backbone(merger=merger)
    before = {
        k: v.clone()
        for k, v in backbone.state_dict().items()
        if k.startswith('merge_schedule.')
    }
    assert before
    backbone.load_state_dict(converted, strict=True)
    state = backbone.state_dict()
    for key, value in converted.items():
        assert torch.equal(state[key], value), key
    for key, value in before.items():
        assert torch.equal(state[key], value), key


def test_wrong_inputs_are_refused(source):
    videomae = _to_videomae(source.state_dict())
    with pytest.raises(ValueError, match="converts to dst 'videomae-vit'"):
        convert_state_dict(videomae, 'videomae', 'spacetime-vit')
    # The layout check names what it found.
    mmaction = {f'backbone.{k}': v for k, v in source.state_dict().items()}
    with pytest.raises(ValueError, match='found the mmaction-videomae'):
        convert_state_dict(mmaction, 'videomae', 'videomae-vit')
    with pytest.raises(ValueError, match='found the videomae layout'):
        convert_state_dict(videomae, 'timm', 'spacetime-vit')
    # An image ViT under VideoMAE's names: a 2D patch kernel.
    image = dict(videomae)
    image['patch_embed.proj.weight'] = image['patch_embed.proj.weight'][:, :,
                                                                        0]
    with pytest.raises(ValueError, match='not a tubelet Conv3d'):
        convert_state_dict(image, 'videomae', 'videomae-vit')
    missing = dict(videomae)
    del missing['blocks.2.mlp.fc2.bias']
    with pytest.raises(ValueError, match='lacks 1 VideoMAE ViT'):
        convert_state_dict(missing, 'videomae', 'videomae-vit')
    with pytest.raises(ValueError, match='no classifier'):
        convert_state_dict(
            videomae, 'videomae', 'videomae-vit', with_head=True)
    with pytest.raises(ValueError, match='positions'):
        convert_state_dict(
            {
                f'backbone.{k}': v
                for k, v in source.state_dict().items()
            },
            'mmaction-videomae',
            'videomae-vit',
            num_frames=16)


def test_cli(source, head, tmp_path, capsys):
    tool = load_tool('convert_weights',
                     osp.join(REPO, 'tools', 'convert_weights.py'))
    state = _to_videomae(source.state_dict())
    state.update({f'head.{k}': v for k, v in head.items()})
    path = tmp_path / 'videomae_ft.pth'
    torch.save(dict(model=state), path)
    out = tmp_path / 'checkpoints' / 'ft.pth'
    tool.main([
        str(path),
        str(out), '--src-format', 'videomae', '--dst', 'videomae-vit',
        '--num-frames', '4', '--img-size', '32', '--with-head'
    ])
    printed = capsys.readouterr().out
    assert '(videomae) ->' in printed and 'cls_head.fc_cls' in printed
    ckpt = torch.load(out, map_location='cpu', weights_only=True)
    assert ckpt['meta']['src_format'] == 'videomae'
    assert ckpt['meta']['with_head'] is True
    assert 'backbone.blocks.2.mlp.layers.1.weight' in ckpt['state_dict']
    assert torch.equal(ckpt['state_dict']['cls_head.fc_cls.bias'],
                       head['bias'])


def test_missing_weights_name_the_videomae_conversion():
    """A zoo VideoMAE config whose converted file is missing is told to
    convert VideoMAE's pre-training checkpoint, not an ImageNet ViT."""
    from mmengine.config import Config

    from mmaction_sttm import tooling
    cfg = Config.fromfile(
        osp.join(
            REPO, 'configs', 'videomae',
            'sttm_vit-huge-p16_videomae-k400-pre_8xb2-u16-30e_sthv2-rgb.py'))
    out = cfg.model.backbone.pretrained
    assert tooling.converter_command(
        cfg.model.backbone,
        out) == (f'python tools/convert_weights.py checkpoint-1599.pth {out} '
                 '--src-format videomae --dst videomae-vit')
    backbone = dict(cfg.model.backbone, num_frames=8, img_size=160)
    assert tooling.converter_command(
        backbone,
        out).endswith('--dst videomae-vit --num-frames 8 --img-size 160')
    # An ImageNet file name keeps the ImageNet command.
    assert '--src-format timm' in tooling.converter_command(
        backbone, 'checkpoints/vit-large-p16_in1k_videomae-vit.pth')


def test_videomae_without_qv_bias(source):
    """VideoMAE built with qkv_bias=False has timm's key names; its tubelet
    kernel tells it apart, and zero q / v biases are written (the same
    function)."""
    state = {
        k: v
        for k, v in _to_videomae(source.state_dict()).items()
        if not k.endswith(('q_bias', 'v_bias'))
    }
    assert detect_layout(state) == 'videomae'
    converted, notes = convert_state_dict(
        state, 'videomae', 'videomae-vit', num_frames=4, img_size=32)
    assert any('no q/v biases' in n for n in notes)
    assert not converted['blocks.0.attn.q_bias'].any()
    plain = VisionTransformer(**ARCH, qkv_bias=False).eval()
    plain.load_state_dict({
        k: v
        for k, v in source.state_dict().items() if '_bias' not in k
    })
    backbone = _zoo_backbone()
    backbone.load_state_dict(converted, strict=True)
    torch.testing.assert_close(
        _features(backbone, _clip()), _features(plain, _clip()))
