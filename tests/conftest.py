"""Shared fixtures: a tiny synthetic dataset and helpers to run the tools.

Helpers are fixtures (pytest puts ``conftest.py`` in no importable package).
"""
import gc
import os
import os.path as osp
import socket
import subprocess
import sys
from typing import Callable, Dict, Iterator, List, Sequence

import pytest
from mmengine.config import Config

from mmaction_sttm.generators import SyntheticSpec, make_synthetic_dataset

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# The study code (tools/analysis_tools/sttm_study/) is the repository's,
# not the package's: the tests import it as `sttm_study`, as the tools
# beside it do.
sys.path.append(osp.join(REPO_ROOT, 'tools', 'analysis_tools'))


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test``), the workers share the cores:
    each one's torch gets its share of threads, not all of them."""
    workers = os.environ.get('PYTEST_XDIST_WORKER_COUNT')
    if workers:
        import torch
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(workers)))


# Small enough that a whole train/test run through torchrun takes seconds:
# 2 classes x (4 + 2) videos of 32 px, 16 frames (enough for the configs'
# 8 x 2 clip sampling).
TINY_SPEC = SyntheticSpec(
    num_classes=2,
    train_per_class=4,
    val_per_class=2,
    resolution=32,
    num_frames=16,
    seed=0)


@pytest.fixture(scope='session')
def default_runtime() -> Config:
    """The zoo's ``configs/_base_/default_runtime.py``."""
    return Config.fromfile(
        osp.join(REPO_ROOT, 'configs', '_base_', 'default_runtime.py'))


@pytest.fixture
def safe_loading_hooks(default_runtime: Config) -> Iterator[dict]:
    """``default_hooks`` with the zoo's checkpoint-loading hook, as the zoo's
    runtime config names it, for a Runner built with
    ``default_scope='mmaction'``. MMEngine's checkpoint loaders are put back
    after the test (a run that raises leaves the hook's loaders in place)."""
    from mmengine.runner import checkpoint
    schemes = checkpoint.CheckpointLoader._schemes.copy()
    http_loader = checkpoint.load_from_http
    yield dict(
        checkpoint_loading=default_runtime.default_hooks.checkpoint_loading)
    # A run that raised left its hook's loader context open; collect it now,
    # so that its clean-up (which puts back the loaders it found) runs here
    # and not in the middle of a later test's run.
    gc.collect()
    checkpoint.CheckpointLoader._schemes = schemes
    checkpoint.load_from_http = http_loader


@pytest.fixture
def safe_loading(safe_loading_hooks: dict) -> Iterator[None]:
    """Checkpoints load as in a run of a zoo config: the test runs between
    the ``before_run`` and ``after_run`` of the hook that the zoo's runtime
    config names."""
    from mmaction.registry import HOOKS
    hook = HOOKS.build(safe_loading_hooks['checkpoint_loading'])
    hook.before_run(None)
    yield
    hook.after_run(None)


@pytest.fixture(scope='session')
def repo_root() -> str:
    """Absolute path of the repository."""
    return REPO_ROOT


@pytest.fixture(scope='session')
def tiny_spec() -> SyntheticSpec:
    """The spec of :func:`tiny_dataset`."""
    return TINY_SPEC


@pytest.fixture(scope='session')
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny synthetic motion dataset, generated once per test session."""
    out_dir = str(tmp_path_factory.mktemp('synthetic_tiny'))
    make_synthetic_dataset(out_dir, TINY_SPEC)
    return out_dir


def _data_cfg_options(data_root: str) -> List[str]:
    options = []
    for loader, split in (('train', 'train'), ('val', 'val'), ('test', 'val')):
        options += [
            f'{loader}_dataloader.dataset.ann_file='
            f'{data_root}/{split}_list_videos.txt',
            f'{loader}_dataloader.dataset.data_prefix.video='
            f'{data_root}/videos',
        ]
    return options


@pytest.fixture(scope='session')
def data_cfg_options() -> Callable[[str], List[str]]:
    """``f(data_root)``: ``--cfg-options`` items that point the train, val
    and test dataloaders at a synthetic dataset in ``data_root``."""
    return _data_cfg_options


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def free_port() -> int:
    """A TCP port nobody listens on now, for a rendezvous (several test runs
    may share the machine, so the fixed 29500 would collide)."""
    return _free_port()


def _tool_env() -> Dict[str, str]:
    # This interpreter for torchrun and its children; one thread per process
    # (two processes share two cores).
    env = dict(os.environ)
    env['PYTHON'] = sys.executable
    env['PATH'] = osp.dirname(sys.executable) + os.pathsep + env['PATH']
    env['PORT'] = str(_free_port())
    env['OMP_NUM_THREADS'] = '1'
    return env


def _run_tool(args: Sequence[str],
              cwd: str,
              timeout: float = 300) -> subprocess.CompletedProcess:
    script, *rest = args
    proc = subprocess.run(['bash', osp.join(REPO_ROOT, script), *rest],
                          cwd=cwd,
                          env=_tool_env(),
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f'{" ".join(args)} exited with {proc.returncode}:\n'
                    f'{proc.stdout[-6000:]}')
    return proc


@pytest.fixture(scope='session')
def run_tool() -> Callable[..., subprocess.CompletedProcess]:
    """``f(args, cwd, timeout=300)``: run ``bash <repo>/<args[0]> args[1:]``
    in ``cwd`` (the scripts must work from anywhere) with this interpreter;
    fail the test with the tail of its output unless it exits with 0.
    Returns the ``CompletedProcess`` (stderr merged into ``stdout``)."""
    return _run_tool
