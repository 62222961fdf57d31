"""Sharded training (FSDP) through MMEngine's FlexibleRunner: the config's
`runner_type` picks it in tools/train.py and tools/test.py, and
tools/dist_train.sh trains a tiny merged model over gloo on 2 CPU
processes (the CPU shim in mmaction_sttm.compat)."""
import json
import os.path as osp
import re
import subprocess
import sys

import torch
from mmengine.config import Config
from stack import load_runner_checkpoint
from test_train_test import NPROC, TINY_MODEL

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
STRATEGY = osp.join(REPO_ROOT, 'configs', '_base_', 'strategies',
                    'fsdp_full-state.py')
MERGED = osp.join(
    REPO_ROOT, 'configs', 'synthetic',
    'sttm_vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py')
#: STTM after the model's one block cannot merge (it merges after blocks
#: 2 and 3): a two-block model with ToMe after block 1.
MERGER = [
    'model.backbone.depth=2', 'model.backbone.merger.type=ToMe',
    'model.backbone.merger.layers=[1]',
    'model.backbone.merger.stages=[spatiotemporal]',
    'model.backbone.merger.ratio=0.3'
]


def test_fsdp_trains_on_two_cpu_processes_and_its_checkpoint_tests(
        tmp_path, run_tool, data_cfg_options, tiny_dataset):
    config = tmp_path / 'fsdp.py'
    config.write_text(f'_base_ = [{STRATEGY!r}, {MERGED!r}]\n')
    options = [
        *TINY_MODEL, *MERGER, 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1', *data_cfg_options(tiny_dataset)
    ]
    work = tmp_path / 'work'
    proc = run_tool([
        'tools/dist_train.sh',
        str(config),
        str(NPROC), '--work-dir',
        str(work), '--seed', '0', '--cfg-options', *options
    ],
                    cwd=str(tmp_path))
    assert 'Epoch(train) [1]' in proc.stdout, proc.stdout[-3000:]
    assert 'Epoch(val) [1]' in proc.stdout, proc.stdout[-3000:]
    val = float(
        re.search(r'Epoch\(val\) \[1\]\S*\s+acc/top1: ([\d.]+)',
                  proc.stdout).group(1))
    # The run was FSDP's: the dumped config names the CPU wrapper.
    dumped = Config.fromfile(str(work / 'fsdp.py'))
    assert dumped.runner_type == 'FlexibleRunner'
    assert dumped.strategy.model_wrapper.type == 'CPUFullyShardedDataParallel'
    # A full state dict in one file, with every parameter whole.
    ckpt = load_runner_checkpoint(str(work / 'epoch_1.pth'))
    weight = ckpt['state_dict']['backbone.blocks.0.attn.qkv.weight']
    assert tuple(weight.shape) == (96, 32) and torch.isfinite(weight).all()
    # tools/test.py on one process tests it with the same config, as the
    # validation did.
    out = tmp_path / 'test'
    tested = subprocess.run([
        sys.executable, 'tools/test.py',
        str(config),
        str(work / 'epoch_1.pth'), '--work-dir',
        str(out), '--cfg-options', *options
    ],
                            cwd=REPO_ROOT,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            text=True,
                            timeout=300)
    assert tested.returncode == 0, tested.stdout[-3000:]
    with open(out / 'test_metrics.json') as f:
        assert json.load(f)['acc/top1'] == val


def _losses(work) -> list:
    """The training loss of every iteration, as rank 0 logged it."""
    scalars = sorted(work.glob('*/vis_data/scalars.json'))[-1]
    rows = [json.loads(line) for line in scalars.read_text().splitlines()]
    return [row['loss'] for row in rows if 'loss' in row]


def test_fsdp_and_ddp_give_the_same_loss_curve(tmp_path, run_tool,
                                               data_cfg_options, tiny_dataset):
    """20 training steps of the same tiny merged model, data and seed on 2
    CPU processes: FSDP (one unit, sharded parameters, gradients and
    optimizer states) logs the losses that DDP does."""
    fsdp = tmp_path / 'fsdp.py'
    fsdp.write_text(f'_base_ = [{STRATEGY!r}, {MERGED!r}]\n')
    options = [
        *TINY_MODEL, *MERGER, 'train_cfg.max_epochs=10',
        'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=100',
        *data_cfg_options(tiny_dataset)
    ]
    curves = {}
    for name, config in (('ddp', MERGED), ('fsdp', str(fsdp))):
        work = tmp_path / name
        proc = run_tool([
            'tools/dist_train.sh', config,
            str(NPROC), '--work-dir',
            str(work), '--seed', '0', '--cfg-options', *options
        ],
                        cwd=str(tmp_path))
        assert 'Epoch(train) [10]' in proc.stdout, proc.stdout[-3000:]
        curves[name] = _losses(work)
    assert len(curves['ddp']) == 20, curves
    assert curves['ddp'][0] - curves['ddp'][-1] > 0.01, curves  # it learns
    torch.testing.assert_close(
        torch.tensor(curves['fsdp']),
        torch.tensor(curves['ddp']),
        rtol=1e-3,
        atol=1e-4)
