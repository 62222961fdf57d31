"""Swapping the backbone or the merger is a config edit: every merger in
every backbone builds through MMAction2's Recognizer3D, trains a step and
goes through the FLOP counter."""
import pytest
import torch
from mmaction.structures import ActionDataSample
from mmaction.utils import register_all_modules
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from stack import with_gt_label
from tiny_backbones import BACKBONES, DIMS, FRAMES, SIZE

import mmaction_sttm  # noqa: F401
from mmaction_sttm.analysis import complexity
from mmaction_sttm.registry import MODELS

register_all_modules()

MERGERS = [
    'STTM', 'ToMe', 'EViT', 'RandomDrop', 'UniformPool', 'PiToMe', 'VidTLDR'
]

BASE = dict(
    model=dict(
        type='Recognizer3D',
        backbone=BACKBONES['vit'],
        cls_head=dict(
            type='TimeSformerHead',
            num_classes=5,
            in_channels=DIMS,
            average_clips='prob'),
        data_preprocessor=dict(
            type='ActionDataPreprocessor',
            mean=[128., 128., 128.],
            std=[64., 64., 64.],
            format_shape='NCTHW')))


def _recognizer(backbone, merger):
    """Build from a config edited the way ``--cfg-options`` edits it."""
    cfg = Config(BASE)
    # A different backbone family replaces the base one (``_delete_``), as
    # in a config inheriting from a base config.
    cfg.merge_from_dict(
        {'model.backbone': dict(_delete_=True, **BACKBONES[backbone])})
    if merger is not None:
        cfg.merge_from_dict({
            'model.backbone.merger':
            dict(type=merger, layers=(1, 2), ratio=0.5)
        })
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


def _batch(num=2):
    gen = torch.Generator().manual_seed(0)
    inputs = [
        torch.randint(
            0,
            256, (1, 3, FRAMES, SIZE, SIZE),
            generator=gen,
            dtype=torch.uint8) for _ in range(num)
    ]
    samples = [
        with_gt_label(ActionDataSample(), torch.tensor([i % 5]))
        for i in range(num)
    ]
    return dict(inputs=inputs, data_samples=samples)


def _train_step(model):
    """One real MMEngine training step (preprocess, loss, backward, SGD)."""
    model.train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    losses = model.train_step(_batch(), wrapper)
    assert torch.isfinite(losses['loss'])
    changed = {
        n
        for n, p in model.named_parameters()
        if not torch.equal(before[n], p.detach())
    }
    return changed


@pytest.mark.parametrize('backbone', list(BACKBONES))
@pytest.mark.parametrize('merger', MERGERS)
def test_every_merger_in_every_backbone_trains(backbone, merger):
    model = _recognizer(backbone, merger)
    changed = _train_step(model)
    # The blocks before and after the merges learn, and so do STTM's own
    # layers (the others have none).
    assert any('cls_head' in n for n in changed)
    assert any('blocks.0.' in n or 'layers.0.' in n for n in changed)
    assert any('blocks.2.' in n or 'layers.2.' in n for n in changed)
    if merger == 'STTM':
        assert any('merge_schedule.mergers.1.phi' in n for n in changed)
        assert any('merge_schedule.mergers.2.fuse' in n for n in changed)
    if backbone in ('mmpretrain', 'timm'):
        assert 'backbone.time_embed' in changed


# Tracing costs seconds per model on CPU, so besides STTM each backbone is
# traced with one other merger (all of them go through the counter on the
# ViT in test_mergers.py).
TRACED = dict(
    vit='UniformPool',
    timesformer='VidTLDR',
    videomae='EViT',
    mmpretrain='RandomDrop',
    timm='PiToMe')


@pytest.mark.parametrize('backbone', list(BACKBONES))
def test_merging_cuts_flops_in_every_backbone(backbone):
    shape = (1, 3, FRAMES, SIZE, SIZE)
    full = complexity(_recognizer(backbone, None), shape)['flops']
    merged = {
        merger: complexity(_recognizer(backbone, merger), shape)['flops']
        for merger in ('STTM', TRACED[backbone])
    }
    assert all(0 < flops < full for flops in merged.values()), merged
