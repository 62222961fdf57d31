"""Interrupted runs, resumption and reproducibility, with real runs of
``tools/train.py`` and real SIGKILLs.

One reference run trains a tiny ViT + STTM (drop path on, random crops in a
persistent dataloader worker, so that every source of randomness is in play)
for 3 epochs with ``--deterministic --seed 0``. The other runs must end with
exactly its weights and validation metrics:

* the same command again (reproducibility);
* a run killed in the middle of epoch 2, then continued with ``--resume``;
* a run killed while it writes epoch 2's checkpoint with
  ``max_keep_ckpts=1``, then continued with ``--resume``.
"""
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import textwrap
import warnings
from typing import Dict, List

import mmengine
import pytest
import torch
from stack import load_runner_checkpoint, pred_scores

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(
    REPO_ROOT, 'configs', 'synthetic',
    'sttm_vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py')
EPOCHS = 3
ITERS = 4  # 8 training videos, batches of 2
TINY = [
    'model.backbone.embed_dims=32', 'model.backbone.depth=4',
    'model.backbone.num_heads=2', 'model.backbone.drop_path_rate=0.2',
    'model.cls_head.in_channels=32', 'model.cls_head.num_classes=2',
    'train_dataloader.batch_size=2', 'val_dataloader.batch_size=2',
    'train_dataloader.num_workers=1',
    'train_dataloader.persistent_workers=True', 'val_dataloader.num_workers=0',
    'val_dataloader.persistent_workers=False', 'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False',
    f'train_cfg.max_epochs={EPOCHS}', 'train_cfg.val_interval=1',
    'default_hooks.logger.interval=1',
    'default_hooks.checkpoint.max_keep_ckpts=1'
]


def _env(*python_path: str) -> Dict[str, str]:
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1', PYTHONFAULTHANDLER='1')
    if python_path:
        env['PYTHONPATH'] = os.pathsep.join(
            [*python_path, env.get('PYTHONPATH', '')]).rstrip(os.pathsep)
    return env


def _train_cmd(work_dir: str,
               data: List[str],
               *extra: str,
               config: str = CONFIG) -> List[str]:
    return [
        sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
        '--seed', '0', '--deterministic', *extra, '--cfg-options', *TINY, *data
    ]


def _run(cmd: List[str]) -> str:
    proc = subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        env=_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=600)
    if proc.returncode != 0:
        pytest.fail(f'{" ".join(cmd)} exited with {proc.returncode}:\n'
                    f'{proc.stdout[-6000:]}')
    return proc.stdout


def _kill_when(cmd: List[str], pattern: str) -> str:
    """Run ``cmd``; SIGKILL its process group once a line of its output
    matches ``pattern``. Returns the output up to the kill."""
    proc = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        env=_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if re.search(pattern, line):
                os.killpg(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=60)
    return ''.join(lines)


def _val_metrics(log: str) -> List[str]:
    """The metrics of every validation epoch, as logged."""
    return re.findall(
        r'Epoch\(val\)\s+\[(\d+)\]\[\d+/\d+\]\s+(acc/top1: \S+\s+'
        r'acc/top5: \S+\s+acc/mean1: \S+)', log)


def _final(work_dir: str) -> dict:
    return load_runner_checkpoint(osp.join(work_dir, f'epoch_{EPOCHS}.pth'))


def _assert_same_run(a: str, b: str) -> None:
    ckpt_a, ckpt_b = _final(a), _final(b)
    assert ckpt_a['state_dict'].keys() == ckpt_b['state_dict'].keys()
    for name, value in ckpt_a['state_dict'].items():
        assert torch.equal(value, ckpt_b['state_dict'][name]), name
    state_a = ckpt_a['optimizer']['state']
    state_b = ckpt_b['optimizer']['state']
    for key in state_a:
        for name, value in state_a[key].items():
            assert torch.equal(value, state_b[key][name]), (key, name)


@pytest.fixture(scope='module')
def data(tiny_dataset, data_cfg_options) -> List[str]:
    return data_cfg_options(tiny_dataset)


@pytest.fixture(scope='module')
def reference(tmp_path_factory, data) -> Dict[str, object]:
    """An uninterrupted deterministic run: its work dir and log."""
    work_dir = str(tmp_path_factory.mktemp('reference'))
    log = _run(_train_cmd(work_dir, data))
    assert len(_val_metrics(log)) == EPOCHS
    # One checkpoint kept, one best checkpoint (the previous best is deleted
    # after the new one is written), nothing temporary left.
    files = os.listdir(work_dir)
    assert f'epoch_{EPOCHS}.pth' in files and 'epoch_1.pth' not in files
    assert len([f for f in files if f.startswith('best_')]) == 1, files
    assert not [f for f in files if f.endswith('.tmp')]
    return dict(work_dir=work_dir, log=log)


def test_deterministic_runs_are_bit_identical(reference, tmp_path, data):
    log = _run(_train_cmd(str(tmp_path), data))
    _assert_same_run(reference['work_dir'], str(tmp_path))
    assert _val_metrics(log) == _val_metrics(reference['log'])


def test_resume_after_kill_mid_epoch(reference, tmp_path, data):
    work_dir = str(tmp_path)
    killed = _kill_when(
        _train_cmd(work_dir, data), rf'Epoch\(train\)\s+\[2\]\[2/{ITERS}\]')
    assert re.search(r'Epoch\(train\)\s+\[2\]\[1/', killed)
    assert not osp.exists(osp.join(work_dir, 'epoch_2.pth'))
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip().endswith('epoch_1.pth')

    log = _run(_train_cmd(work_dir, data, '--resume'))
    assert f'resumed epoch: 1, iter: {ITERS}' in log
    _assert_same_run(reference['work_dir'], work_dir)
    # Epochs 2 and 3 validated as in the uninterrupted run.
    assert _val_metrics(log) == _val_metrics(reference['log'])[1:]


KILL_DURING_SAVE = '''
"""Test plugin: SIGKILL this process group (the run and its dataloader
worker) while it writes epoch {epoch}'s checkpoint. The checkpoint is padded to {pad_mb} MB so that the write lasts
long enough for a watcher thread to see its file appear."""
import os
import signal
import threading
import time

import torch
from mmengine.hooks import Hook

from mmaction.registry import HOOKS


@HOOKS.register_module()
class KillDuringSaveHook(Hook):

    def before_save_checkpoint(self, runner, checkpoint):
        if checkpoint['meta']['epoch'] != {epoch} or 'optimizer' not in checkpoint:
            return
        checkpoint['padding'] = torch.zeros({pad_mb} * 2**18)
        name = 'epoch_{epoch}.pth'

        def watch():
            while True:
                for entry in os.scandir(runner.work_dir):
                    if entry.name == name or (entry.name.startswith(
                            '.' + name) and entry.name.endswith('.tmp')):
                        os.killpg(os.getpgid(0), signal.SIGKILL)
                time.sleep(0.0005)

        threading.Thread(target=watch, daemon=True).start()
'''


def test_kill_during_checkpoint_save(reference, tmp_path, data):
    """A kill while epoch 2's checkpoint is written, with only one checkpoint
    kept: epoch 1's checkpoint survives, ``last_checkpoint`` points to it,
    no truncated ``epoch_2.pth`` exists, and ``--resume`` ends as the
    uninterrupted run did."""
    work_dir = str(tmp_path / 'work')
    plugin_dir = tmp_path / 'plugin'
    plugin_dir.mkdir()
    (plugin_dir / 'kill_during_save.py').write_text(
        textwrap.dedent(KILL_DURING_SAVE.format(epoch=2, pad_mb=100)))
    config = plugin_dir / 'with_kill.py'
    config.write_text(
        textwrap.dedent(f"""\
        _base_ = ['{CONFIG}']
        custom_imports = dict(imports=['mmaction_sttm', 'kill_during_save'],
                              allow_failed_imports=False)
        custom_hooks = [dict(type='BadSampleHook'),
                        dict(type='EpochSeedHook'),
                        dict(type='KillDuringSaveHook')]
        """))
    for attempt in range(2):
        proc = subprocess.run(
            _train_cmd(work_dir, data, config=str(config)),
            cwd=REPO_ROOT,
            env=_env(str(plugin_dir)),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=600,
            start_new_session=True)
        if proc.returncode == -signal.SIGKILL or attempt:
            break
        # Once, on a loaded CI machine, the run died of SIGABRT in epoch 1,
        # before the hook armed the kill, with nothing printed (faulthandler
        # now prints the stacks). That is not what this test is about: say
        # so and run it once more in a fresh work directory.
        warnings.warn(f'training died with status {proc.returncode} before '
                      f'the planned kill; running again:\n'
                      f'{proc.stdout[-3000:]}')
        work_dir = str(tmp_path / 'work_again')
    assert proc.returncode == -signal.SIGKILL, proc.stdout[-3000:]
    files = os.listdir(work_dir)
    # Killed mid-write: the temporary file is there, the target is not.
    assert 'epoch_2.pth' not in files
    assert any(f.startswith('.epoch_2.pth.') for f in files), files
    # The previous checkpoint was kept (max_keep_ckpts=1 deleted it before
    # the save in MMEngine's order) and is complete.
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        last = f.read().strip()
    assert last.endswith('epoch_1.pth')
    ckpt = load_runner_checkpoint(last)
    assert ckpt['meta']['epoch'] == 1

    _run(_train_cmd(work_dir, data, '--resume'))
    _assert_same_run(reference['work_dir'], work_dir)
    # The resumed run's own save of epoch 2 removed the dead temporary file.
    assert not any(f.endswith('.tmp') for f in os.listdir(work_dir))


def test_test_outputs_do_not_depend_on_batch_size(reference, tmp_path, data):
    """Three-crop test scores of every video are the same with batches of
    1 and of 4 (STTM merges each clip on its own)."""
    ckpt = osp.join(reference['work_dir'], f'epoch_{EPOCHS}.pth')
    scores = []
    for batch in (1, 4):
        dump = str(tmp_path / f'preds_b{batch}.pkl')
        _run([
            sys.executable, 'tools/test.py', CONFIG, ckpt, '--work-dir',
            str(tmp_path / f'b{batch}'), '--dump', dump, '--cfg-options',
            *TINY, f'test_dataloader.batch_size={batch}', *data
        ])
        # MMAction2's data samples, as dicts.
        scores.append(
            torch.stack([pred_scores(r) for r in mmengine.load(dump)]))
    assert scores[0].shape == (4, 2)
    torch.testing.assert_close(scores[0], scores[1], rtol=0, atol=1e-6)
