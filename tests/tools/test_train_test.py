"""Real runs of tools/dist_train.sh and tools/dist_test.sh: two processes on
CPU (gloo), a tiny ViT on a tiny synthetic dataset."""
import argparse
import json
import os.path as osp
import re
import shutil

import mmengine
import pytest
import torch
from mmaction.registry import DATASETS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from stack import load_runner_checkpoint
from tool_modules import load_tool

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO_ROOT, 'configs', 'synthetic',
                  'vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py')

# A one-block, 32-wide ViT and batches of 2: each of the 2 processes sees
# 2 iterations per epoch of the 8 tiny training videos, so epochs and
# iterations can be checked exactly.
NPROC = 2
BATCH = 2
TINY_MODEL = [
    'model.backbone.embed_dims=32', 'model.backbone.depth=1',
    'model.backbone.num_heads=2', 'model.cls_head.in_channels=32',
    'model.cls_head.num_classes=2', f'train_dataloader.batch_size={BATCH}',
    f'val_dataloader.batch_size={BATCH}', 'train_dataloader.num_workers=0',
    'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.persistent_workers=False',
    'test_dataloader.persistent_workers=False',
    'default_hooks.logger.interval=1'
]


def iters_per_epoch(spec) -> int:
    return spec.num_classes * spec.train_per_class // (NPROC * BATCH)


@pytest.fixture(scope='module')
def train(run_tool, data_cfg_options, tiny_dataset):
    """``f(work_dir, max_epochs, *args)``: tools/dist_train.sh on 2 CPU
    processes with the tiny model on the tiny dataset."""

    def _train(work_dir: str, max_epochs: int, *args: str):
        return run_tool([
            'tools/dist_train.sh', CONFIG,
            str(NPROC), '--work-dir', work_dir, '--seed', '0', *args,
            '--cfg-options', f'train_cfg.max_epochs={max_epochs}', *TINY_MODEL,
            *data_cfg_options(tiny_dataset)
        ],
                        cwd=work_dir)

    return _train


@pytest.fixture(scope='module')
def one_epoch(tmp_path_factory, train) -> str:
    """Work dir of a finished 1-epoch distributed training run."""
    work_dir = str(tmp_path_factory.mktemp('train_1e'))
    proc = train(work_dir, 1)
    assert 'Epoch(train) [1]' in proc.stdout
    assert 'Epoch(val) [1]' in proc.stdout
    return work_dir


def test_train_two_processes_on_cpu(one_epoch, tiny_spec):
    # Weights-only loadable on torch >= 2.6 (the checkpoint allow-list).
    ckpt = load_runner_checkpoint(osp.join(one_epoch, 'epoch_1.pth'))
    assert ckpt['meta']['epoch'] == 1
    assert ckpt['meta']['iter'] == iters_per_epoch(tiny_spec)
    # The config the run dumped: compat chose gloo and DDP without devices.
    cfg = Config.fromfile(osp.join(one_epoch, osp.basename(CONFIG)))
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.device_ids is None
    with open(osp.join(one_epoch, 'last_checkpoint')) as f:
        assert f.read().strip().endswith('epoch_1.pth')


def test_dist_test_three_crop(one_epoch, tiny_dataset, run_tool,
                              data_cfg_options):
    out_dir = osp.join(one_epoch, 'test')
    dump = osp.join(out_dir, 'preds.pkl')
    proc = run_tool([
        'tools/dist_test.sh', CONFIG,
        osp.join(one_epoch, 'epoch_1.pth'),
        str(NPROC), '--work-dir', out_dir, '--dump', dump, '--cfg-options',
        *TINY_MODEL, *data_cfg_options(tiny_dataset)
    ],
                    cwd=one_epoch)
    assert 'Test metrics:' in proc.stdout
    with open(osp.join(out_dir, 'test_metrics.json')) as f:
        metrics = json.load(f)
    assert set(metrics) >= {'acc/top1', 'acc/top5', 'acc/mean1'}
    assert 0.0 <= metrics['acc/top1'] <= 1.0
    assert metrics['acc/top5'] == 1.0  # 2 classes: always in the top 5
    # Every val video exactly once, gathered from both ranks.
    assert len(mmengine.load(dump)) == 4


def test_test_pipeline_has_three_views(tiny_dataset):
    """The config's test pipeline gives 3 crops of one clip per video, which
    the head averages (MMAction2's multi-view testing)."""
    cfg = Config.fromfile(CONFIG)
    init_default_scope('mmaction')
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.ann_file = f'{tiny_dataset}/val_list_videos.txt'
    dataset_cfg.data_prefix.video = f'{tiny_dataset}/videos'
    inputs = DATASETS.build(dataset_cfg)[0]['inputs']
    crop = cfg.crop_size
    assert tuple(inputs.shape) == (3, 3, 8, crop, crop)  # views, C, T, H, W
    # Three different crops, not one crop three times.
    assert not torch.equal(inputs[0], inputs[1])
    assert not torch.equal(inputs[1], inputs[2])


def test_resume_continues_interrupted_run(one_epoch, train, tmp_path,
                                          tiny_spec):
    """`--resume` picks up epoch 1's checkpoint and trains only epoch 2."""
    work_dir = str(tmp_path / 'resumed')
    shutil.copytree(one_epoch, work_dir)
    proc = train(work_dir, 2, '--resume')
    n = iters_per_epoch(tiny_spec)
    assert f'resumed epoch: 1, iter: {n}' in proc.stdout
    assert 'Epoch(train) [2]' in proc.stdout
    assert not re.search(r'Epoch\(train\) \[1\]', proc.stdout)
    ckpt = load_runner_checkpoint(osp.join(work_dir, 'epoch_2.pth'))
    assert ckpt['meta']['epoch'] == 2
    assert ckpt['meta']['iter'] == 2 * n


def test_missing_resume_checkpoint_is_clear(tmp_path):
    """A --resume path that does not exist fails before anything starts."""
    train_tool = load_tool('train_tool',
                           osp.join(REPO_ROOT, 'tools', 'train.py'))
    missing = str(tmp_path / 'nope.pth')
    args = argparse.Namespace(
        config=CONFIG,
        work_dir=str(tmp_path),
        resume=missing,
        amp=False,
        no_validate=False,
        auto_scale_lr=False,
        seed=None,
        diff_rank_seed=False,
        deterministic=False,
        cfg_options=None,
        launcher='none')
    with pytest.raises(
            train_tool.tooling.ToolError,
            match=f'--resume checkpoint {missing} does not exist'):
        train_tool.merge_args(Config.fromfile(CONFIG), args)
