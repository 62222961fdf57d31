"""Every config under ``configs/`` builds, trains one step and tests.

For each config (found by glob, so new configs are covered without editing
this file): MMEngine parses it; the settings the model zoo promises hold
(classes per dataset, frames per model, the paper's 1 clip x 3 crops test,
no flip on SSv2, where the pretrained weights are expected); and the pieces a
``Runner`` builds from it (the same builders: ``Runner.build_dataloader``,
``build_optim_wrapper``, the ``PARAM_SCHEDULERS`` and ``Evaluator``) run one
real training iteration (decord pipeline, forward, backward, AdamW step with
the config's parameter-wise settings, scheduler step), one validation batch
and one 3-crop test batch with its metric, on synthetic videos.

The Runner itself is not used: it would also re-initialise ViT-B's weights,
pretty-print the config and set up logging for every config, which triples
the run time on a CPU. tools/train.py's own tests run the Runner.

To fit a CPU, only the inputs shrink: the annotation files point to a tiny
synthetic set (2 classes, 32x32 videos of 16 frames), frames are resized and
cropped to 48x48 instead of 224x224 (3x3 patches per frame, so that even a
0.8-ratio merge keeps two meta tokens per frame and its correspondence gets a
gradient), zoo clips have 2 frames instead of 8-13 (the zoo backbones
resample their temporal embeddings), one sample per split, batch size 1, no
worker
processes, no pretrained weights (tests/tools/test_convert_weights.py covers
those). The model is built exactly as configured: ViT-B, 12 blocks, the
configured frames, merge layers and ratios.
"""
import glob
import math
import os.path as osp
import re
from typing import Dict, List, Optional

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.evaluator import Evaluator
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS, init_default_scope
from mmengine.runner import Runner
from stack import pred_scores
from torch import nn

import mmaction_sttm  # noqa: F401  (registers the modules)
from mmaction_sttm.datasets import pipeline_steps
from mmaction_sttm.generators import SyntheticSpec, make_synthetic_dataset
from mmaction_sttm.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    osp.relpath(path, REPO) for path in glob.glob(
        osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if f'{osp.sep}_base_{osp.sep}' not in path
    # The study's variants are a few lines each on the study's base configs
    # (tested here); tests/tools/test_study.py builds every one of them.
    and osp.basename(osp.dirname(path)) not in ('pretrain', 'finetune', 'ots',
                                                'scratch')
    # Plans, not configs: the confirmatory study's protocol holds no model
    # (tests/study/test_confirm_configs.py reads it).
    and osp.basename(path) != 'protocol.py'
    # ViT-L / ViT-H: full-size models whose AdamW states alone outgrow a
    # test's memory; tests/configs/test_videomae_large_configs.py builds
    # each and trains one step on a reduced clip.
    and not path.startswith(osp.join(REPO, 'configs', 'videomae', '')))
# Ablations that change only their reference's merger: the reference runs
# here in full, the ablation's merger in test_ablation_configs.py.
MERGER_ONLY = sorted(
    path for path in CONFIGS
    if path.startswith(osp.join('configs', 'sttm', 'ablations', 'sttm-')))
FULL = [path for path in CONFIGS if path not in MERGER_ONLY]

# Input side length of the shrunken pipelines, and what the configs' 224
# (crop) and 256 (short side before cropping) become.
SIZE = 48
SHRINK = {224: SIZE, 256: math.ceil(256 * SIZE / 224)}
# Frames per shrunken clip.
FRAMES = 2
NUM_CLASSES = {'kinetics400': 400, 'sthv2': 174}
# Converted checkpoints the zoo configs expect, per backbone type (see
# tools/convert_weights.py --dst).
CHECKPOINT_LAYOUT = {
    'SpaceTimeViT': 'spacetime-vit',
    'MergingTimeSformer': 'timesformer',
}


def test_configs_found():
    zoo = [c for c in CONFIGS if c.startswith(osp.join('configs', 'sttm'))]
    # 18 Table-6 configs (3 backbones x 2 datasets x baseline / STTM /
    # same-compute STTM) and 17 ablation configs (Tables 1-5): 3 references
    # and 14 that change one merger setting.
    assert len(zoo) == 35, zoo
    assert len(MERGER_ONLY) == 14, MERGER_ONLY


@pytest.fixture(scope='session')
def synthetic_data(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('synthetic'))
    make_synthetic_dataset(
        root,
        SyntheticSpec(
            num_classes=2,
            train_per_class=2,
            val_per_class=1,
            resolution=32,
            num_frames=16))
    return root


LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _samplers(cfg: Config) -> List[ConfigDict]:
    # DecodeWithFallback holds the sampler.
    return [
        step for loader in LOADERS
        for step in pipeline_steps(cfg[loader].dataset.pipeline)
        if step.type in ('SampleFrames', 'UniformSample')
    ]


def _check_decoding(cfg: Config) -> None:
    """Every split reads its videos as the zoo promises: decord, then PyAV,
    then OpenCV, 60 s each, with the dataset's bad-sample policy."""
    for loader in LOADERS:
        dataset = cfg[loader].dataset
        assert dataset.type == 'RobustVideoDataset', loader
        assert dataset.on_bad_sample == 'replace', loader
        assert 'decoders' not in dataset and 'decode_timeout' not in dataset
        decode = dataset.pipeline[0]
        assert decode.type == 'DecodeWithFallback', (loader, decode.type)
        assert decode.decoders == ['decord', 'pyav', 'opencv'], loader
        assert decode.timeout == 60, loader
        assert decode.sampler.type in ('SampleFrames', 'UniformSample')
        testing = loader != 'train_dataloader'
        assert decode.sampler.get('test_mode', False) == testing, loader
        # MMAction2's own decoder steps are gone from the pipeline.
        types = [step.type for step in dataset.pipeline]
        assert not {'DecordInit', 'DecordDecode'} & set(types), types


def _check_zoo_config(path: str, cfg: Config) -> None:
    """What the file name and the paper promise about a zoo config."""
    name = osp.basename(path)[:-len('.py')]
    dataset = name.split('_')[-1].split('-')[0]
    model = cfg.model
    assert model.cls_head.num_classes == NUM_CLASSES[dataset]
    assert model.cls_head.in_channels == model.backbone.embed_dims
    # STTM configs merge, baselines do not.
    assert name.startswith('sttm') == ('merger' in model.backbone)
    # The frames of the name, of every sampler and of the model agree.
    frames = model.backbone.num_frames
    field = name.split('_')[-2].split('-')[1]
    assert field in (f'{frames}x8x1', f'u{frames}')
    assert {s.clip_len for s in _samplers(cfg)} == {frames}
    assert {s.get('num_clips', 1) for s in _samplers(cfg)} == {1}
    # Paper sec. 4.2: one clip, three spatial crops at 224.
    test_steps = {s.type: s for s in cfg.test_dataloader.dataset.pipeline}
    assert test_steps['ThreeCrop'].crop_size == 224
    # SSv2 labels name directions: never flip them.
    train_types = [s.type for s in cfg.train_dataloader.dataset.pipeline]
    assert ('Flip' in train_types) == (dataset == 'kinetics400')
    epochs = int(re.search(r'-(\d+)e_', name).group(1))
    assert cfg.train_cfg.max_epochs == epochs == (15 if 'ablations' in path
                                                  else 30)
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=64)
    layout = CHECKPOINT_LAYOUT[model.backbone.type]
    assert model.backbone.pretrained.startswith('checkpoints/')
    assert model.backbone.pretrained.endswith(f'_in1k_{layout}.pth')


def _shrink_pipeline(pipeline: List[ConfigDict],
                     frames: Optional[int]) -> None:
    """Scale the 224 / 256 pixel sizes of a pipeline down to ``SIZE`` and
    its clips to ``frames`` frames (if given)."""
    for step in pipeline_steps(pipeline):
        if frames and step.type in ('SampleFrames', 'UniformSample'):
            step.clip_len = frames
        for key in ('scale', 'crop_size', 'size', 'input_size'):
            value = step.get(key)
            if isinstance(value, int):
                step[key] = SHRINK.get(value, value)
            elif isinstance(value, (tuple, list)):
                step[key] = tuple(SHRINK.get(v, v) for v in value)


def _shrink(cfg: Config, data_root: str, frames: Optional[int]) -> Config:
    cfg.load_from = None
    if 'pretrained' in cfg.model.backbone:
        cfg.model.backbone.pretrained = None
    for loader, split in (('train_dataloader', 'train'),
                          ('val_dataloader', 'val'), ('test_dataloader',
                                                      'val')):
        dataloader = cfg[loader]
        dataloader.batch_size = 1
        dataloader.num_workers = 0
        dataloader.persistent_workers = False
        dataset = dataloader.dataset
        dataset.ann_file = osp.join(data_root, f'{split}_list_videos.txt')
        dataset.data_prefix = dict(video=osp.join(data_root, 'videos'))
        # One video per split: one batch of each loop.
        dataset.indices = 1
        _shrink_pipeline(dataset.pipeline, frames)
    return cfg


def _probed(model: nn.Module) -> Dict[str, torch.Tensor]:
    """Parameters that one training step must change: the head, the patch
    embedding (every path of the gradient ends there) and, when there is
    one, the merger."""
    params = dict(model.named_parameters())
    names = [n for n in params if n.startswith('cls_head.')][:1]
    names += [
        n for n in params
        if n.startswith('backbone.patch_embed.') and n.endswith('weight')
    ][:1]
    names += [n for n in params
              if n.startswith('backbone.merge_schedule.')][:1]
    return {n: params[n] for n in names}


def _check_param_groups(model: nn.Module, optim_wrapper, cfg: Config) -> None:
    """The zoo schedule's parameter-wise settings reach the optimizer."""
    base_lr = cfg.optim_wrapper.optimizer.lr
    names = {id(p): n for n, p in model.named_parameters()}
    groups = {
        names[id(param)]: group
        for group in optim_wrapper.optimizer.param_groups
        for param in group['params']
    }
    assert len(groups) == len(names)
    for name, group in groups.items():
        if name.startswith(('backbone.merge_schedule.', 'cls_head.')):
            expected = base_lr  # new layers (sec. 4.2: STTM starts random)
        else:
            expected = 0.1 * base_lr  # the pretrained backbone
        # Schedulers have scaled 'lr' already; 'initial_lr' is the base.
        assert group['initial_lr'] == pytest.approx(expected), name
    for name in ('backbone.cls_token', 'backbone.pos_embed'):
        assert groups[name]['weight_decay'] == 0, name
    block = next(
        n for n in groups if n.endswith('.weight') and (
            '.blocks.' in n or '.transformer_layers.' in n))
    assert groups[block]['weight_decay'] == cfg.optim_wrapper.optimizer[
        'weight_decay']


@pytest.mark.parametrize('path', FULL)
def test_config(path, synthetic_data):
    cfg = Config.fromfile(osp.join(REPO, path))
    zoo = path.startswith(osp.join('configs', 'sttm'))
    _check_decoding(cfg)
    if zoo:
        _check_zoo_config(path, cfg)
    # The zoo backbones resample their temporal embeddings to any clip
    # length; MMAction2's own TimeSformer and VideoMAE ViT (in the
    # synthetic configs, which are small anyway) need the configured one.
    frames = FRAMES if zoo else None
    cfg = _shrink(cfg, synthetic_data, frames)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    loaders = {
        name: Runner.build_dataloader(cfg[f'{name}_dataloader'], seed=0)
        for name in ('train', 'val', 'test')
    }
    model = MODELS.build(cfg.model)

    # One training iteration, as the Runner's train loop runs it.
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    schedulers = [
        PARAM_SCHEDULERS.build(
            sched,
            default_args=dict(
                optimizer=optim_wrapper, epoch_length=len(loaders['train'])))
        for sched in cfg.param_scheduler
    ]
    if zoo:
        _check_param_groups(model, optim_wrapper, cfg)
    before = {n: p.detach().clone() for n, p in _probed(model).items()}
    model.train()
    losses = model.train_step(next(iter(loaders['train'])), optim_wrapper)
    for scheduler in schedulers:
        scheduler.step()
    assert math.isfinite(float(losses['loss'].detach()))
    for name, param in _probed(model).items():
        assert not torch.equal(param, before[name]), \
            f'{name} was not updated by the training step'

    # The validation loader's batch (one centre crop), and one test batch
    # (1 clip x 3 crops) through the model and its metric.
    val_inputs = next(iter(loaders['val']))['inputs'][0]
    if zoo:
        assert val_inputs.shape == (1, 3, FRAMES, SIZE, SIZE)
    model.eval()
    batch = next(iter(loaders['test']))
    views = batch['inputs'][0].shape[0]
    three_crop = any(s.type == 'ThreeCrop'
                     for s in cfg.test_dataloader.dataset.pipeline)
    assert views == (3 if three_crop else 1)
    with torch.no_grad():
        outputs = model.test_step(batch)
    assert len(outputs) == 1
    scores = pred_scores(outputs[0])
    assert scores.shape == (cfg.model.cls_head.num_classes, )
    if cfg.model.cls_head.get('average_clips') == 'prob':
        # The views' class probabilities, averaged.
        assert float(scores.sum()) == pytest.approx(1, abs=1e-4)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.process(outputs, batch)
    assert 0 <= evaluator.evaluate(1)['acc/top1'] <= 1
