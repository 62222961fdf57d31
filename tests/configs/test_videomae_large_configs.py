"""The zoo's large VideoMAE configs (``configs/videomae/``: ViT-L/16 and
ViT-H/16, unmerged, STTM and ToMe, Kinetics-400 and SSv2) build and train.

For each config: what its name and the VideoMAE recipe promise (width,
depth and heads of ViT-L / ViT-H, 16 frames in every sampler, the reducer of
the name, batch and epochs, 5 x 3 Kinetics and 2 x 3 SSv2 test views, no
flip on SSv2, the converted weights it expects), then one real training
iteration of the full-size model, as the Runner's train loop runs it:
decord pipeline on a synthetic video, data preprocessor, forward, loss,
backward, optimizer step with the config's layer-wise decay groups. The
test pipeline is run too (no model): it gives clips x 3 crops per video.

Only the clip shrinks: 4 frames (two tubelets) at 64x64 (4x4 patches per
tubelet slice, so that every merge of the configs still removes tokens:
STTM keeps 8 of 16 per slice, then 8 of 16; ToMe removes one token at each
of its first merges), batch 1. ``model.backbone.num_frames`` follows the
clip: the VideoMAE ViT's position table is a fixed sinusoid buffer, not a
parameter, so the parameters are the configured ones.

Memory: ViT-H has 632M parameters, 2.5 GB in float32; with its gradients and
AdamW's two moment buffers a step needs about 10 GB, more than a test here
may take. The ViT-H configs therefore run their step with plain SGD (no
optimizer state; the config's rate, weight decay, parameter groups and
layer-wise decay kept);
the ViT-L configs (304M parameters) run the configured AdamW. Peak memory
of this file: about 6 GB (ViT-H weights and gradients).
"""
import glob
import math
import os.path as osp
import re
from typing import Dict

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import mmaction_sttm  # noqa: F401  (registers the modules)
from mmaction_sttm.datasets import pipeline_steps
from mmaction_sttm.generators import SyntheticSpec, make_synthetic_dataset
from mmaction_sttm.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(REPO, 'configs', 'videomae', '*.py')))
# width, depth, heads, drop path (VideoMAE's fine-tuning scripts).
ARCHS = {
    'vit-large-p16': (1024, 24, 16, 0.1),
    'vit-huge-p16': (1280, 32, 16, 0.2)
}
NUM_CLASSES = {'kinetics400': 400, 'sthv2': 174}
# Test clips per video (the crops are 3 everywhere): VideoMAE's 16x5x3 on
# Kinetics-400 and 16x2x3 on SSv2.
TEST_CLIPS = {'kinetics400': 5, 'sthv2': 2}
FRAMES = 4
SIZE = 64
SHRINK = {224: SIZE, 256: math.ceil(256 * SIZE / 224)}


def test_configs_found():
    # 2 backbones x 2 datasets x (unmerged, STTM, ToMe).
    assert len(CONFIGS) == 12, CONFIGS


def _parse(path: str) -> Dict[str, str]:
    name = osp.basename(path)[:-len('.py')]
    match = re.fullmatch(
        r'(?:(?P<algo>sttm|tome)_)?(?P<backbone>vit-(?:large|huge)-p16)_'
        r'videomae-k400-pre_(?P<gpus>\d+)xb(?P<batch>\d+)-'
        r'(?P<frames>16x4x1|u16)-(?P<epochs>\d+)e_'
        r'(?P<dataset>kinetics400|sthv2)-rgb', name)
    assert match, name
    return match.groupdict()


def _check_promises(path: str, cfg: Config) -> None:
    fields = _parse(path)
    model, backbone = cfg.model, cfg.model.backbone
    dims, depth, heads, drop_path = ARCHS[fields['backbone']]
    assert backbone.type == 'MergingVisionTransformer'
    assert (backbone.embed_dims, backbone.depth,
            backbone.num_heads) == (dims, depth, heads)
    assert (backbone.patch_size, backbone.tubelet_size, backbone.img_size,
            backbone.num_frames) == (16, 2, 224, 16)
    assert backbone.mlp_ratio == 4 and backbone.qkv_bias
    assert backbone.norm_cfg == dict(type='LN', eps=1e-6)
    assert backbone.drop_path_rate == drop_path
    assert backbone.pretrained == (f'checkpoints/{fields["backbone"]}_'
                                   'videomae-k400-pre_videomae-vit.pth')
    assert model.cls_head.type == 'TimeSformerHead'
    assert model.cls_head.in_channels == dims
    assert model.cls_head.num_classes == NUM_CLASSES[fields['dataset']]
    merger = backbone.get('merger')
    if fields['algo'] is None:
        assert merger is None
    elif fields['algo'] == 'sttm':
        assert merger.type == 'STTM'
        # The paper's placement at the same relative depths (1/2, 3/4).
        assert merger.layers == (depth // 2, depth * 3 // 4)
        assert merger.stages == ('spatial', 'spatiotemporal')
    else:
        assert merger.type == 'ToMe'
        # After every block but the last.
        assert merger.layers == tuple(range(1, depth))
    samplers = [
        step
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
        for step in pipeline_steps(cfg[loader].dataset.pipeline)
        if step.type in ('SampleFrames', 'UniformSample')
    ]
    assert {s.clip_len for s in samplers} == {16}
    if fields['frames'] == '16x4x1':
        assert {s.frame_interval for s in samplers} == {4}
    else:
        assert {s.type for s in samplers} == {'UniformSample'}
    test_sampler = samplers[-1]
    assert test_sampler.num_clips == TEST_CLIPS[fields['dataset']]
    test_steps = {s.type: s for s in cfg.test_dataloader.dataset.pipeline}
    assert test_steps['ThreeCrop'].crop_size == 224
    train_types = [s.type for s in cfg.train_dataloader.dataset.pipeline]
    assert ('Flip' in train_types) == (fields['dataset'] == 'kinetics400')
    assert cfg.train_dataloader.batch_size == int(fields['batch'])
    assert cfg.train_cfg.max_epochs == int(fields['epochs'])
    assert cfg.auto_scale_lr.base_batch_size == int(fields['gpus']) * int(
        fields['batch'])
    optim = cfg.optim_wrapper
    assert optim.constructor == 'LearningRateDecayOptimizerConstructor'
    assert optim.paramwise_cfg.num_layers == depth
    # VideoMAE's base rates per 256 videos (ViT-L 2e-3, ViT-H 1e-3),
    # scaled to the config's total batch.
    base = 2e-3 if fields['backbone'] == 'vit-large-p16' else 1e-3
    assert optim.optimizer.lr == pytest.approx(
        base * cfg.auto_scale_lr.base_batch_size / 256)


def _shrink(cfg: Config, data_root: str) -> None:
    cfg.model.backbone.pretrained = None
    cfg.model.backbone.num_frames = FRAMES
    for name, split in (('train_dataloader', 'train'), ('test_dataloader',
                                                        'val')):
        loader = cfg[name]
        loader.batch_size = 1
        loader.num_workers = 0
        loader.persistent_workers = False
        dataset = loader.dataset
        dataset.ann_file = osp.join(data_root, f'{split}_list_videos.txt')
        dataset.data_prefix = dict(video=osp.join(data_root, 'videos'))
        dataset.indices = 1
        _shrink_pipeline(dataset.pipeline)


def _shrink_pipeline(pipeline: list) -> None:
    for step in pipeline_steps(pipeline):
        if step.type in ('SampleFrames', 'UniformSample'):
            step.clip_len = FRAMES
        for key in ('scale', 'crop_size', 'size'):
            value = step.get(key)
            if isinstance(value, int):
                step[key] = SHRINK.get(value, value)
            elif isinstance(value, (tuple, list)):
                step[key] = tuple(SHRINK.get(v, v) for v in value)


@pytest.fixture(scope='module')
def synthetic_data(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('synthetic'))
    make_synthetic_dataset(
        root,
        SyntheticSpec(
            num_classes=2,
            train_per_class=1,
            val_per_class=1,
            resolution=32,
            num_frames=16))
    return root


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds_and_trains_one_step(path, synthetic_data):
    cfg = Config.fromfile(osp.join(REPO, path))
    _check_promises(path, cfg)
    _shrink(cfg, synthetic_data)
    huge = 'vit-huge' in path
    if huge:
        # No optimizer state (see the module docstring); the constructor,
        # its layer-wise groups and the rate stay the config's.
        optimizer = cfg.optim_wrapper.optimizer
        cfg.optim_wrapper.optimizer = ConfigDict(
            type='SGD', lr=optimizer.lr, weight_decay=optimizer.weight_decay)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    # The test pipeline gives every view of a video: clips x 3 crops.
    views = next(iter(Runner.build_dataloader(cfg.test_dataloader)))
    clips = TEST_CLIPS[_parse(path)['dataset']]
    assert views['inputs'][0].shape == (3 * clips, 3, FRAMES, SIZE, SIZE)
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    # Layer-wise decay: the last block at 0.75 of the rate, the patch
    # embedding at 0.75 ** (depth + 1), head and merger at the full rate.
    depth = cfg.model.backbone.depth
    lr = cfg.optim_wrapper.optimizer.lr
    rates = {
        name: group['lr']
        for group in optim_wrapper.optimizer.param_groups
        for name in group['param_names']
    }
    assert rates[f'backbone.blocks.{depth - 1}.attn.qkv.weight'] == \
        pytest.approx(0.75 * lr)
    assert rates['backbone.patch_embed.projection.weight'] == pytest.approx(
        0.75**(depth + 1) * lr)
    assert rates['cls_head.fc_cls.weight'] == pytest.approx(lr)
    merger = [n for n in rates if n.startswith('backbone.merge_schedule.')]
    assert bool(merger) == path.startswith('configs/videomae/sttm_')
    assert all(rates[n] == pytest.approx(lr) for n in merger)

    params = dict(model.named_parameters())
    probed = ['cls_head.fc_cls.weight', 'backbone.patch_embed.projection.bias']
    probed += merger[:1]
    before = {n: params[n].detach().clone() for n in probed}
    batch = next(iter(loader))
    assert batch['inputs'][0].shape == (1, 3, FRAMES, SIZE, SIZE)
    model.train()
    losses = model.train_step(batch, optim_wrapper)
    assert math.isfinite(float(losses['loss'].detach()))
    for name in probed:
        assert not torch.equal(params[name], before[name]), \
            f'{name} was not updated by the training step'
