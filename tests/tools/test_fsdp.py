"""Sharded training (FSDP) through MMEngine's FlexibleRunner: the config's
`runner_type` picks it in tools/train.py and tools/test.py, and
tools/dist_train.sh trains a tiny merged model over gloo on 2 CPU
processes (the CPU shim in mmaction_sttm.compat)."""
import json
import os
import os.path as osp
import re
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from stack import load_runner_checkpoint
from test_train_test import NPROC, TINY_MODEL

#: Multi-process FSDP runs: `make test-fsdp` (and CI), not `make test`.
pytestmark = pytest.mark.fsdp
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
    assert dumped.runner_type == 'ResumableFlexibleRunner'
    assert dumped.strategy.model_wrapper.type == 'CPUFullyShardedDataParallel'
    # A full state dict in one file, with every parameter whole.
    ckpt = load_runner_checkpoint(str(work / 'epoch_1.pth'))
    weight = ckpt['state_dict']['backbone.blocks.0.attn.qkv.weight']
    assert tuple(weight.shape) == (96, 32) and torch.isfinite(weight).all()
    # tools/test.py on one process tests it with the same config, as the
    # validation did.
    out = tmp_path / 'test'
    tested = _python_tool('tools/test.py', config, work / 'epoch_1.pth',
                          '--work-dir', out, '--cfg-options', *options)
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
    CPU processes: FSDP (a unit per block, sharded parameters, gradients and
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


SHARDED = osp.join(REPO_ROOT, 'configs', '_base_', 'strategies',
                   'fsdp_bf16-cp_sharded-state.py')

KILL_PLUGIN = '''
"""Test plugin: SIGKILL the whole run (torchrun and every rank) right after
the first training iteration of epoch 2."""
import os
import signal

from mmengine.hooks import Hook

from mmaction.registry import HOOKS


@HOOKS.register_module()
class KillInEpochTwoHook(Hook):

    priority = 'LOWEST'  # after the logger has printed the iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        if runner.epoch == 1 and batch_idx == 0:
            os.killpg(os.getpgid(0), signal.SIGKILL)
'''


def _python_tool(script: str, *args) -> subprocess.CompletedProcess:
    """``python SCRIPT ARGS`` in the repository (stderr into stdout)."""
    return subprocess.run([sys.executable, script, *map(str, args)],
                          cwd=REPO_ROOT,
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=300)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _consolidate(folder, out) -> dict:
    proc = _python_tool('tools/consolidate_checkpoint.py', folder, out)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return load_runner_checkpoint(str(out))


def test_sharded_fsdp_resumes_bit_identically_and_consolidates(
        tmp_path, run_tool, data_cfg_options, tiny_dataset):
    """The zoo's strategy (a unit per block, bf16 blocks, checkpointed
    blocks, sharded state dicts) on 2 CPU processes: a run killed in epoch 2
    and resumed from its sharded epoch-1 checkpoint logs the losses of the
    uninterrupted run and ends with its weights, bit for bit; the
    consolidated checkpoint tests as the run validated."""
    config = tmp_path / 'sharded.py'
    config.write_text(f'_base_ = [{SHARDED!r}, {MERGED!r}]\n')
    (tmp_path / 'kill_plugin.py').write_text(KILL_PLUGIN)
    killing = tmp_path / 'killing.py'
    killing.write_text(
        f'_base_ = [{str(config)!r}]\n'
        "custom_imports = dict(imports=['mmaction_sttm', 'kill_plugin'])\n"
        'custom_hooks = [dict(type="BadSampleHook"), '
        'dict(type="EpochSeedHook"), dict(type="KillInEpochTwoHook")]\n')
    options = [
        *TINY_MODEL, *MERGER, 'model.backbone.drop_path_rate=0.2',
        'train_cfg.max_epochs=3', 'train_cfg.val_interval=1',
        'default_hooks.checkpoint.max_keep_ckpts=1',
        *data_cfg_options(tiny_dataset)
    ]

    def train(cfg, work, *extra):
        return [
            'tools/dist_train.sh',
            str(cfg),
            str(NPROC), '--work-dir',
            str(work), '--seed', '0', '--deterministic', *extra,
            '--cfg-options', *options
        ]

    reference = tmp_path / 'reference'
    run_tool(train(config, reference), cwd=str(tmp_path))
    # Sharded checkpoints: a folder of one file per rank.
    assert sorted(os.listdir(reference / 'epoch_3.pth')) == \
        ['rank0.pth', 'rank1.pth']

    resumed = tmp_path / 'resumed'
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        PORT=str(_free_port()),
        OMP_NUM_THREADS='1',
        PYTHONPATH=os.pathsep.join([str(tmp_path), REPO_ROOT]))
    killed = subprocess.run([
        'bash',
        osp.join(REPO_ROOT,
                 train(killing, resumed)[0]), *train(killing, resumed)[1:]
    ],
                            cwd=str(tmp_path),
                            env=env,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            text=True,
                            start_new_session=True,
                            timeout=300)
    assert killed.returncode != 0
    assert re.search(r'Epoch\(train\)\s+\[2\]\[1/', killed.stdout), \
        killed.stdout[-3000:]
    assert not (resumed / 'epoch_2.pth').exists()
    proc = run_tool(train(config, resumed, '--resume'), cwd=str(tmp_path))
    assert 'resumed epoch: 1, iter: 2' in proc.stdout, proc.stdout[-3000:]

    # The losses after the resume are the uninterrupted run's, bit for bit.
    assert _losses(resumed)[-4:] == _losses(reference)[-4:]
    assert len(_losses(reference)) == 6
    # So are the final weights, consolidated from the two ranks' shards.
    ours = _consolidate(resumed / 'epoch_3.pth', tmp_path / 'resumed.pth')
    theirs = _consolidate(reference / 'epoch_3.pth', tmp_path / 'ref.pth')
    assert ours['state_dict'].keys() == theirs['state_dict'].keys()
    for name, value in theirs['state_dict'].items():
        assert torch.equal(ours['state_dict'][name], value), name
    weight = ours['state_dict']['backbone.blocks.0.attn.qkv.weight']
    assert tuple(weight.shape) == (96, 32) and weight.dtype == torch.float32

    # tools/test.py scores the consolidated file as the last validation.
    val = float(
        re.findall(r'Epoch\(val\) \[3\]\S*\s+acc/top1: ([\d.]+)',
                   proc.stdout)[-1])
    out = tmp_path / 'test'
    tested = _python_tool('tools/test.py', config, tmp_path / 'resumed.pth',
                          '--work-dir', out, '--cfg-options', *options)
    assert tested.returncode == 0, tested.stdout[-3000:]
    with open(out / 'test_metrics.json') as f:
        assert json.load(f)['acc/top1'] == val


def test_consolidate_names_a_folder_that_is_not_sharded(tmp_path):
    (tmp_path / 'epoch_1.pth').mkdir()
    (tmp_path / 'epoch_1.pth' / 'rank1.pth').write_bytes(b'')
    for src in (tmp_path / 'missing', tmp_path / 'epoch_1.pth'):
        proc = _python_tool('tools/consolidate_checkpoint.py', src,
                            tmp_path / 'out.pth')
        assert proc.returncode == 2, proc.stdout
        lines = proc.stdout.strip().splitlines()
        assert len(lines) == 1 and str(src) in lines[0], proc.stdout


def test_fsdp_trains_on_two_simulated_nodes(tmp_path, data_cfg_options,
                                            tiny_dataset):
    """NNODES=2, one process per node (two launchers on this machine, as on
    two nodes, with a shared work dir): the tiny merged model trains with
    the zoo's strategy."""
    config = tmp_path / 'sharded.py'
    config.write_text(f'_base_ = [{SHARDED!r}, {MERGED!r}]\n')
    options = [
        *TINY_MODEL, *MERGER, 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1', *data_cfg_options(tiny_dataset)
    ]
    port = str(_free_port())
    nodes = []
    for node in range(2):
        env = dict(
            os.environ,
            PYTHON=sys.executable,
            OMP_NUM_THREADS='1',
            NNODES='2',
            NODE_RANK=str(node),
            PORT=port,
            MASTER_ADDR='127.0.0.1')
        nodes.append(
            subprocess.Popen([
                'bash',
                osp.join(REPO_ROOT, 'tools', 'dist_train.sh'),
                str(config), '1', '--work-dir',
                str(tmp_path / 'work'), '--seed', '0', '--cfg-options',
                *options
            ],
                             cwd=str(tmp_path),
                             env=env,
                             stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT,
                             text=True))
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    for node, out in zip(nodes, outputs):
        assert node.returncode == 0, out[-3000:]
    # Rank 0 (node 0) logs the epoch, over a world of 2 ranks.
    assert 'Epoch(train) [1]' in outputs[0], outputs[0][-3000:]
    assert re.search(r'GPU number: 2', outputs[0]), \
        outputs[0][-3000:]
    # One work dir, as on a shared file system: each rank wrote its shard.
    assert sorted(os.listdir(tmp_path / 'work' / 'epoch_1.pth')) == \
        ['rank0.pth', 'rank1.pth']
