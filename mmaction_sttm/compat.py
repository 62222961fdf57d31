"""Workarounds for the torch / MMEngine / MMAction2 stack that are no engine
feature. Each states the problem it solves, so it can be deleted when the
stack no longer has it. The checkpoint fixes are engine features a config
names or a loader scheme: :mod:`mmaction_sttm.engine.checkpoint_loading` and
:mod:`mmaction_sttm.engine.safe_checkpoint`.

1. **Distributed runs on CPU.** MMEngine's ``pytorch`` / ``slurm`` / ``mpi``
   launchers call ``torch.cuda.set_device`` and the Runner gives DDP
   ``device_ids``; both fail without CUDA. :func:`setup_distributed`
   initialises a gloo process group from the launcher's environment before
   the Runner is built (the Runner then sees it initialised and skips its
   own init) and sets ``model_wrapper_cfg`` so that DDP gets no device ids.
   A ``FlexibleRunner`` config with MMEngine's ``FSDPStrategy`` has the
   same problem once more: the strategy gives FSDP ``device_id=LOCAL_RANK``,
   which FSDP reads as a CUDA device. On CPU the strategy's model wrapper
   becomes ``CPUFullyShardedDataParallel``, MMEngine's FSDP wrapper with
   ``device_id`` set to the CPU (:func:`cpu_fsdp_wrapper`). With CUDA it
   changes nothing and MMEngine's usual (nccl) path runs.

2. **A misleading warning.** mmcv-lite has no compiled ops, and importing
   MMAction2 warns that ``MultiScaleDeformableAttention`` is missing; no
   recognizer uses it, so that one warning is hidden while the package
   imports the module that gives it (:func:`import_mmcv_quietly`); no
   warning filter stays behind.

3. **An abort at exit.** gloo's worker thread frees a finished collective
   (and the tensors it holds) a moment after the caller's ``wait`` returns;
   a tensor created in Python needs the GIL to be freed. When the last
   collective of a run is followed by interpreter shutdown, that thread can
   ask for the GIL while the interpreter finalizes, and the C++ runtime
   aborts the process ("terminate called without an active exception", seen
   on torch 2.14 about one run in three): a finished run exits with -6 and
   torchrun reports it failed. :func:`finish_distributed` ends a run with a
   barrier, during which the worker thread gets the GIL and frees the
   collective, then destroys the process group.
"""
import atexit
import datetime
import importlib
import inspect
import os
import re
import subprocess
import warnings
from typing import Tuple

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict

__all__ = ['setup_distributed', 'finish_distributed', 'import_mmcv_quietly']


def import_mmcv_quietly() -> None:
    """Import ``mmcv.cnn.bricks.transformer``, which MMAction2's models
    import, without mmcv-lite's warning about its missing compiled ops.

    The filter holds only during that import (a module warns once, when it
    is first imported). ``mmcv.cnn`` is imported before, outside the filter:
    ``catch_warnings`` restores the filter list as it was, and would drop
    the filters that torch or numpy add when they are first imported.
    """
    import mmcv.cnn  # noqa: F401
    with warnings.catch_warnings():
        warnings.filterwarnings(
            'ignore',
            message='Fail to import ``MultiScaleDeformableAttention``',
            category=UserWarning)
        importlib.import_module('mmcv.cnn.bricks.transformer')


_DEFAULT_MASTER_PORT = '29500'


def _slurm_master_addr() -> str:
    node_list = os.environ['SLURM_NODELIST']
    return subprocess.getoutput(
        f'scontrol show hostname {node_list} | head -n1').strip()


def _launcher_env(launcher: str) -> Tuple[int, int]:
    """Rank and world size from the launcher's environment.

    Also sets ``MASTER_ADDR`` / ``MASTER_PORT`` where the launcher does not
    (slurm, mpi), as MMEngine's ``init_dist`` does, since gloo's ``env://``
    rendezvous reads them.

    Args:
        launcher (str): ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Returns:
        tuple[int, int]: ``(rank, world_size)``.
    """
    if launcher == 'pytorch':
        required = ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
        missing = [k for k in required if k not in os.environ]
        if missing:
            raise RuntimeError(
                f'--launcher pytorch needs the environment variables '
                f'{", ".join(missing)}; start the script with torchrun '
                '(tools/dist_train.sh, tools/dist_test.sh).')
        return int(os.environ['RANK']), int(os.environ['WORLD_SIZE'])
    if launcher == 'slurm':
        rank = int(os.environ['SLURM_PROCID'])
        world_size = int(os.environ['SLURM_NTASKS'])
        os.environ.setdefault('MASTER_ADDR', _slurm_master_addr())
        os.environ.setdefault('LOCAL_RANK', os.environ['SLURM_LOCALID'])
    elif launcher == 'mpi':
        rank = int(os.environ['OMPI_COMM_WORLD_RANK'])
        world_size = int(os.environ['OMPI_COMM_WORLD_SIZE'])
        if 'MASTER_ADDR' not in os.environ:
            raise RuntimeError('--launcher mpi needs MASTER_ADDR')
        os.environ.setdefault('LOCAL_RANK',
                              os.environ['OMPI_COMM_WORLD_LOCAL_RANK'])
    else:
        raise ValueError(f'Unsupported launcher {launcher!r}; expected one '
                         "of 'none', 'pytorch', 'slurm', 'mpi'")
    os.environ.setdefault('MASTER_PORT', _DEFAULT_MASTER_PORT)
    os.environ['RANK'] = str(rank)
    os.environ['WORLD_SIZE'] = str(world_size)
    return rank, world_size


def _destroy_process_group() -> None:
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def finish_distributed() -> None:
    """End a run that finished normally: wait for every rank at a barrier,
    then destroy the default process group (item 3 above). A no-op when no
    process group is initialised.

    Only a run that finished calls it: after an error the other ranks may
    never reach the barrier, and :func:`setup_distributed`'s exit hook only
    destroys the group.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()


def _cpu_model_wrapper_cfg(cfg: Config) -> ConfigDict:
    """``model_wrapper_cfg`` with DDP's ``device_ids`` set to ``None``.

    The Runner passes ``device_ids=[LOCAL_RANK]`` by default to any
    ``DistributedDataParallel`` wrapper; a value in the config wins over
    that default, and ``None`` is what DDP wants for CPU modules.
    """
    from mmengine.registry import MODEL_WRAPPERS
    from torch.nn.parallel import DistributedDataParallel

    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        # The same wrapper the Runner builds when there is no config.
        wrapper = ConfigDict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper = ConfigDict(wrapper)
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper_type = wrapper['type']
    if isinstance(wrapper_type, str):
        wrapper_type = MODEL_WRAPPERS.get(wrapper_type)
    if inspect.isclass(wrapper_type) and issubclass(wrapper_type,
                                                    DistributedDataParallel):
        wrapper['device_ids'] = None
    return wrapper


def setup_distributed(cfg: Config, launcher: str) -> Config:
    """Make a distributed launcher work on CPU as well as on GPU.

    Call it after the config is complete and before
    ``Runner.from_cfg(cfg)``. On CPU it initialises the gloo process group
    (with ``env_cfg.dist_cfg.timeout`` if set), records ``backend='gloo'`` in
    ``cfg.env_cfg.dist_cfg``, makes DDP run without ``device_ids`` and
    destroys the process group at exit. With CUDA, or with
    ``launcher='none'``, it returns ``cfg`` unchanged.

    Args:
        cfg (Config): The complete config; modified in place.
        launcher (str): ``'none'``, ``'pytorch'``, ``'slurm'`` or ``'mpi'``.

    Returns:
        Config: ``cfg``.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return cfg
    # The strategy first: a config this machine cannot run fails before
    # any process group starts.
    strategy = cfg.get('strategy')
    sharded = ('FSDPStrategy', 'ResumableFSDPStrategy', 'DeepSpeedStrategy')
    if cfg.get('runner_type') is not None and isinstance(strategy, dict) \
            and strategy.get('type') in sharded:
        if strategy['type'] == 'DeepSpeedStrategy':
            raise ValueError('strategy: DeepSpeed needs CUDA; on CPU use '
                             "strategy=dict(type='ResumableFSDPStrategy')")
        if _torch_version() < (2, 2):
            raise ValueError(
                f'strategy: torch {torch.__version__}\'s FSDP needs CUDA (it '
                'makes CUDA streams); on CPU use a newer torch (FSDP runs on '
                'CPU with torch 2.9.1 and 2.14, tested)')
        wrapper = ConfigDict(strategy.get('model_wrapper') or {})
        if wrapper.get('type', 'MMFullyShardedDataParallel') \
                == 'MMFullyShardedDataParallel':
            wrapper.type = cpu_fsdp_wrapper()
        strategy.model_wrapper = wrapper
    env_cfg = cfg.setdefault('env_cfg', ConfigDict())
    dist_cfg = env_cfg.setdefault('dist_cfg', ConfigDict())
    if not torch_dist.is_initialized():
        rank, world_size = _launcher_env(launcher)
        kwargs = {}
        if dist_cfg.get('timeout') is not None:
            kwargs['timeout'] = datetime.timedelta(seconds=dist_cfg.timeout)
        torch_dist.init_process_group(
            backend='gloo', rank=rank, world_size=world_size, **kwargs)
        atexit.register(_destroy_process_group)
    dist_cfg.backend = 'gloo'
    cfg.model_wrapper_cfg = _cpu_model_wrapper_cfg(cfg)
    return cfg


def _torch_version() -> tuple:
    return tuple(
        int(part) for part in re.findall(r'\d+', torch.__version__)[:2])


def cpu_fsdp_wrapper() -> str:
    """Register (once) MMEngine's FSDP wrapper for CPU modules and return
    its registry name (workaround 1 of this module).

    ``CPUFullyShardedDataParallel`` is ``MMFullyShardedDataParallel`` with
    ``device_id=torch.device('cpu')`` whatever the strategy passes, as
    torch's FSDP needs for CPU modules over gloo. It is registered in
    MMEngine's ``MODEL_WRAPPERS`` (where ``FSDPStrategy`` looks) only when
    a CPU run asks for it, so importing the package adds nothing there.

    Returns:
        str: ``'CPUFullyShardedDataParallel'``.
    """
    from mmengine.model.wrappers import MMFullyShardedDataParallel
    from mmengine.registry import MODEL_WRAPPERS

    name = 'CPUFullyShardedDataParallel'
    if MODEL_WRAPPERS.get(name) is None:

        class CPUFullyShardedDataParallel(MMFullyShardedDataParallel):
            """MMEngine's FSDP wrapper on CPU modules (gloo)."""

            def __init__(self, module, device_id=None, **kwargs) -> None:
                super().__init__(
                    module, device_id=torch.device('cpu'), **kwargs)

        MODEL_WRAPPERS.register_module(
            name=name, module=CPUFullyShardedDataParallel)
    return name
