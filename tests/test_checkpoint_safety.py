"""A checkpoint whose pickle would run code is refused by every path that
loads checkpoints in this project, and nothing of it runs.

Each payload, if unpickled by the plain ``pickle`` module, creates a marker
file; the tests check that the load fails with
:class:`~mmaction_sttm.engine.checkpoint_loading.UnsafeCheckpointError`
naming the file and that
the marker never appears. Paths: MMEngine's ``_load_checkpoint`` /
``load_checkpoint`` / ``CheckpointLoader``, the Runner's ``load_from`` and
``resume`` (explicit and automatic), a backbone's ``Pretrained`` init, and
``tools/train.py --resume`` / ``tools/test.py CHECKPOINT``. A checkpoint
given by URL is the one known gap (see ``test_url_checkpoint_refuses``).

Every path runs as in a run of a zoo config: with the
``SafeCheckpointLoadingHook`` that ``configs/_base_/default_runtime.py``
names (the ``safe_loading`` fixture, or the hook in the Runner). Without it
MMEngine loads as it always does (``test_loading_is_opt_in``).
"""
import builtins
import functools
import http.server
import os
import os.path as osp
import pickle
import subprocess
import sys
import threading
from collections import OrderedDict
from typing import Callable, Dict

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint
from tool_modules import load_tool
from torch.utils.data import Dataset

import mmaction_sttm  # noqa: F401  (registers the hook)
from mmaction_sttm import tooling
from mmaction_sttm.engine import checkpoint_loading  # noqa: F401
from mmaction_sttm.engine.checkpoint_loading import (UnsafeCheckpointError,
                                                     load_from_local)
from mmaction_sttm.models.backbones import SpaceTimeViT

# Before torch 2.6 the safe loaders turn themselves off (see
# test_compat.py::test_old_torch_keeps_mmengine_loaders): nothing to test.
pytestmark = pytest.mark.skipif(
    not checkpoint_loading.supported(),
    reason=f'torch {torch.__version__} < 2.6: safe checkpoint loading is off')

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO, 'configs', 'synthetic',
                  'vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py')

# ----------------------------------------------------------------------
# Payloads: each creates ``marker`` when unpickled by plain pickle.


class SystemCall:

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


class Exec:

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f'open({self.marker!r}, "w").close()', )


class Eval:

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return builtins.eval, (f'open({self.marker!r}, "w").close()', )


class Popen:

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return subprocess.Popen, (['touch', self.marker], )


def _weights() -> Dict[str, torch.Tensor]:
    return nn.Linear(4, 2).state_dict()


# Where in a checkpoint the payload hides: next to the weights, inside an
# allow-listed container (a numpy object array in a HistoryBuffer, as in a
# message hub), and in the state dict's own metadata.
def _in_meta(payload) -> dict:
    return dict(state_dict=_weights(), meta=dict(epoch=1, hook=payload))


def _in_message_hub(payload) -> dict:
    buffer = HistoryBuffer()
    buffer._log_history = np.array([payload], dtype=object)
    return dict(
        state_dict=_weights(),
        message_hub=dict(log_scalars={'train/loss': buffer}))


def _in_state_dict_metadata(payload) -> dict:
    weights = OrderedDict(_weights())
    weights._metadata = {'': dict(version=payload)}
    return dict(state_dict=weights)


PAYLOADS = [SystemCall, Exec, Eval, Popen]
PLACES = [_in_meta, _in_message_hub, _in_state_dict_metadata]


def _evil_checkpoint(tmp_path,
                     payload=SystemCall,
                     place=_in_meta,
                     zip_format: bool = True):
    marker = str(tmp_path / 'code_ran')
    path = str(tmp_path / 'evil.pth')
    torch.save(
        place(payload(marker)),
        path,
        _use_new_zipfile_serialization=zip_format)
    return path, marker


def test_the_payloads_do_run_under_plain_pickle(tmp_path):
    # Guards the tests below: a payload that does nothing would prove
    # nothing.
    for payload in PAYLOADS:
        marker = tmp_path / f'{payload.__name__}.ran'
        proc = pickle.loads(pickle.dumps(payload(str(marker))))
        if isinstance(proc, subprocess.Popen):
            proc.wait()
        assert marker.exists(), payload.__name__


# ----------------------------------------------------------------------
# MMEngine's loading functions


@pytest.mark.parametrize('payload', PAYLOADS, ids=lambda p: p.__name__)
@pytest.mark.parametrize('place', PLACES, ids=lambda p: p.__name__[4:])
@pytest.mark.parametrize('zip_format', [True, False], ids=['zip', 'legacy'])
def test_load_functions_refuse(tmp_path, safe_loading, payload, place,
                               zip_format):
    path, marker = _evil_checkpoint(tmp_path, payload, place, zip_format)
    loaders: Dict[str, Callable] = {
        '_load_checkpoint':
        lambda: _load_checkpoint(path, map_location='cpu'),
        'load_checkpoint':
        lambda: load_checkpoint(nn.Linear(4, 2), path, map_location='cpu'),
        'CheckpointLoader':
        lambda: CheckpointLoader.load_checkpoint(path, map_location='cpu'),
    }
    for name, load in loaders.items():
        with pytest.raises(UnsafeCheckpointError, match='evil.pth') as info:
            load()
        assert 'nothing of it was run' in str(info.value), name
        assert isinstance(info.value, pickle.UnpicklingError)
    assert not osp.exists(marker)


def test_environment_cannot_turn_the_check_off(tmp_path, monkeypatch,
                                               safe_loading):
    # torch's escape hatch applies only where weights_only is not given.
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    path, marker = _evil_checkpoint(tmp_path)
    with pytest.raises(UnsafeCheckpointError):
        _load_checkpoint(path, map_location='cpu')
    assert not osp.exists(marker)


def test_a_clean_checkpoint_still_loads(tmp_path, safe_loading):
    # The refusals above are about the payload, not about every file.
    model = nn.Linear(4, 2)
    path = str(tmp_path / 'clean.pth')
    buffer = HistoryBuffer()
    buffer.update(0.5)
    torch.save(
        dict(
            state_dict=model.state_dict(),
            meta=dict(epoch=3),
            message_hub=dict(log_scalars={'train/loss': buffer})), path)
    target = nn.Linear(4, 2)
    ckpt = load_checkpoint(target, path, map_location='cpu')
    assert ckpt['meta']['epoch'] == 3
    torch.testing.assert_close(target.weight, model.weight)


# ----------------------------------------------------------------------
# The Runner and a backbone's Pretrained init


class ToyModel(BaseModel):

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, inputs, labels, mode='tensor'):
        logits = self.fc(torch.stack(inputs))
        return dict(loss=F.cross_entropy(logits, torch.as_tensor(labels)))


class ToyDataset(Dataset):

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=torch.randn(4), labels=index % 2)


def _runner(work_dir: str,
            default_hooks: dict,
            model=None,
            **kwargs) -> Runner:
    return Runner(
        model=model or ToyModel(),
        work_dir=work_dir,
        # Unique (MMEngine keys its logger and visualizer by this name).
        experiment_name=osp.basename(osp.dirname(work_dir)),
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        default_hooks=default_hooks,
        default_scope='mmaction',
        **kwargs)


@pytest.mark.parametrize('resume', [False, True])
def test_runner_load_from_refuses(tmp_path, safe_loading_hooks, resume):
    path, marker = _evil_checkpoint(tmp_path, Exec)
    runner = _runner(
        str(tmp_path / 'work'),
        safe_loading_hooks,
        load_from=path,
        resume=resume)
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        runner.train()
    assert not osp.exists(marker)


def test_runner_auto_resume_refuses(tmp_path, safe_loading_hooks):
    # `--resume` without a path: the Runner follows `last_checkpoint` in
    # the work dir, which an attacker with write access could point at a
    # planted file.
    path, marker = _evil_checkpoint(tmp_path, SystemCall, _in_message_hub)
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    (work_dir / 'last_checkpoint').write_text(path)
    runner = _runner(str(work_dir), safe_loading_hooks, resume=True)
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        runner.train()
    assert not osp.exists(marker)


def test_pretrained_init_refuses(tmp_path, safe_loading):
    path, marker = _evil_checkpoint(tmp_path, Eval, _in_state_dict_metadata)
    backbone = SpaceTimeViT(
        img_size=16,
        patch_size=8,
        num_frames=2,
        embed_dims=16,
        depth=1,
        num_heads=2,
        pretrained=path)
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        backbone.init_weights()
    assert not osp.exists(marker)


def test_loading_is_opt_in(tmp_path, safe_loading_hooks):
    """The hook registers the safe loaders for its run and puts MMEngine's
    back after it; importing the package registers nothing."""
    from mmengine.runner import checkpoint
    mmengine_loaders = (CheckpointLoader._get_checkpoint_loader('x.pth'),
                        checkpoint.load_from_http)
    assert mmengine_loaders[0] is not load_from_local
    clean = str(tmp_path / 'clean.pth')
    torch.save(dict(state_dict=_weights()), clean)
    seen = []

    class Probe(ToyModel):  # which loader the training run has

        def forward(self, *args, **kwargs):
            seen.append(CheckpointLoader._get_checkpoint_loader(clean))
            return super().forward(*args, **kwargs)

    runner = _runner(
        str(tmp_path / 'work'),
        safe_loading_hooks,
        model=Probe(),
        load_from=clean)
    runner.train()
    assert seen and all(loader is load_from_local for loader in seen)
    assert (CheckpointLoader._get_checkpoint_loader('x.pth'),
            checkpoint.load_from_http) == mmengine_loaders


# ----------------------------------------------------------------------
# The command-line tools (in this process: same code path, no start-up)


def _tool(name: str):
    return load_tool(f'_{name}_tool', osp.join(REPO, 'tools', f'{name}.py'))


TINY = [
    'model.backbone.embed_dims=32', 'model.backbone.depth=1',
    'model.backbone.num_heads=2', 'model.cls_head.in_channels=32',
    'model.cls_head.num_classes=2', 'train_dataloader.batch_size=2',
    'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
    'test_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.persistent_workers=False',
    'test_dataloader.persistent_workers=False'
]


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_tools_refuse(tmp_path, monkeypatch, tiny_dataset, data_cfg_options,
                      tool):
    path, marker = _evil_checkpoint(tmp_path, Popen, _in_meta)
    work_dir = str(tmp_path / 'work')
    if tool == 'train':
        argv = [CONFIG, '--work-dir', work_dir, '--resume', path]
    else:
        argv = [CONFIG, path, '--work-dir', work_dir]
    argv += ['--cfg-options', *TINY, *data_cfg_options(tiny_dataset)]
    monkeypatch.setattr(sys, 'argv', [f'{tool}.py', *argv])
    # test.py checks the checkpoint before the Runner: its one-line error.
    refusal = (UnsafeCheckpointError, 'evil.pth') if tool == 'train' else (
        tooling.ToolError, 'evil.pth is unsafe: it pickles')
    with pytest.raises(refusal[0], match=refusal[1]):
        _tool(tool).main()
    assert not osp.exists(marker)


# ----------------------------------------------------------------------
# Checkpoints given by URL (load_from='https://...', Pretrained init)


@pytest.fixture
def served(tmp_path, monkeypatch):
    """``f(path) -> url``: serve a file over HTTP on 127.0.0.1; downloads
    are cached under tmp_path, not in the user's torch hub."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield lambda path: (f'http://127.0.0.1:{server.server_address[1]}/'
                        f'{osp.relpath(path, tmp_path)}')
    server.shutdown()
    thread.join()


def test_url_checkpoint_refuses(tmp_path, served, safe_loading):
    # The payload is our own harmless `touch` in tmp_path.
    path, marker = _evil_checkpoint(tmp_path, SystemCall)
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(served(path), map_location='cpu')
    assert not osp.exists(marker)


@pytest.mark.parametrize('damage', ['truncated', 'html', 'random'])
def test_a_broken_file_is_not_called_unsafe(tmp_path, damage):
    """A download cut short, an error page or random bytes: "not a
    checkpoint", never "unsafe" (which is kept for files that pickle what
    the allow-list refuses)."""
    from mmaction_sttm.engine import NotACheckpointError
    good = tmp_path / 'good.pth'
    torch.save(dict(state_dict=nn.Linear(8, 8).state_dict()), good)
    data = good.read_bytes()
    broken = tmp_path / 'broken.pth'
    broken.write_bytes(
        dict(
            truncated=data[:len(data) // 2],
            html=b'<html>404</html>',
            random=np.random.default_rng(0).bytes(4096))[damage])
    with pytest.raises(
            NotACheckpointError, match='broken.pth is not a '
            'checkpoint') as info:
        load_from_local(str(broken))
    assert not isinstance(info.value, UnsafeCheckpointError)
    assert 'run code' not in str(info.value)
