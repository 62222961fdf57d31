"""Workarounds for the torch / MMEngine / MMAction2 stack, in one place.

Importing :mod:`mmaction_sttm` applies the checkpoint fixes below once; the
distributed fix is a function that the tools call. Each fix states the
problem it solves, so it can be deleted when the stack no longer has it.

1. **Checkpoints under torch >= 2.6.** ``torch.load`` defaults to
   ``weights_only=True``, and MMEngine 0.10.7 cannot load its own checkpoints
   any more (``--resume``, ``load_from``): their ``message_hub`` pickles
   :class:`~mmengine.logging.HistoryBuffer` objects holding numpy arrays,
   numpy scalars and dtypes. We keep ``weights_only=True`` and allow-list
   exactly the globals that MMEngine writes (found with
   ``torch.serialization.get_unsafe_globals_in_checkpoint`` on checkpoints
   saved by a Runner with optimizer, parameter schedulers, EMA and the
   message hub). MMEngine's local-file loader is replaced by one that turns
   torch's ``UnpicklingError`` into :class:`UnsafeCheckpointError`, naming
   the file and the offending globals. Nothing of a refused pickle runs: the
   weights-only unpickler refuses the global before anything is called.

2. **Checkpoint writes that a kill cannot corrupt.** MMEngine writes a
   checkpoint straight to its final name, writes ``last_checkpoint`` in
   place, and with ``max_keep_ckpts`` deletes the oldest checkpoint *before*
   saving the new one (the previous best one too, before saving a new best).
   A run killed during a save (pre-emption, out of memory) could be left with
   a truncated newest checkpoint and, with ``max_keep_ckpts=1``, with no
   usable checkpoint at all. Local files are now written to a temporary file
   in the same folder, flushed to disk and renamed over the target
   (:func:`atomic_write`), and :class:`~mmengine.hooks.CheckpointHook`
   deletes outdated checkpoints only after the new one and
   ``last_checkpoint`` are in place. A kill at any moment leaves the previous
   checkpoint and a ``last_checkpoint`` that points to a complete file.

3. **Distributed runs on CPU.** MMEngine's ``pytorch`` / ``slurm`` / ``mpi``
   launchers call ``torch.cuda.set_device`` and the Runner gives DDP
   ``device_ids``; both fail without CUDA. :func:`setup_distributed`
   initialises a gloo process group from the launcher's environment before
   the Runner is built (the Runner then sees it initialised and skips its
   own init) and sets ``model_wrapper_cfg`` so that DDP gets no device ids.
   With CUDA it changes nothing and MMEngine's usual (nccl) path runs.

4. **A misleading warning.** mmcv-lite has no compiled ops, and importing
   MMAction2 warns that ``MultiScaleDeformableAttention`` is missing; no
   recognizer uses it, so that one warning is filtered.
"""
import atexit
import contextlib
import datetime
import inspect
import os
import os.path as osp
import pickle
import re
import subprocess
import tempfile
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict
from mmengine.dist import is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.logging import HistoryBuffer
import mmengine.runner.checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

__all__ = [
    'UnsafeCheckpointError', 'CHECKPOINT_SAFE_GLOBALS', 'load_from_local',
    'setup_distributed', 'atomic_write', 'apply'
]

# --------------------------------------------------------------------------
# 1. Checkpoints: weights_only=True with MMEngine's own globals allow-listed
# --------------------------------------------------------------------------


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint pickles objects outside the allow-list.

    Subclasses :class:`pickle.UnpicklingError`, which is what ``torch.load``
    raises for the same reason, so existing handlers keep working.
    """


def _history_buffer_getattr(obj: Any, name: str) -> Callable:
    """Stand-in for ``builtins.getattr`` while unpickling.

    A :class:`HistoryBuffer` pickles its statistics methods (``min``,
    ``max``, ``current``, ``mean``) as ``getattr(HistoryBuffer, 'min')``.
    Allow-listing the real ``getattr`` would let a pickle read any attribute
    of any allowed object (``__globals__`` and from there anything), so only
    these lookups are answered.

    Args:
        obj (Any): The object a pickle asks an attribute of.
        name (str): The attribute name.

    Returns:
        Callable: The plain function ``HistoryBuffer.<name>``.
    """
    if (obj is HistoryBuffer and isinstance(name, str)
            and name in _HISTORY_BUFFER_STATISTICS):
        value = vars(HistoryBuffer).get(name)
        if inspect.isfunction(value):
            return value
    raise pickle.UnpicklingError(
        f'Unsupported call getattr({obj!r}, {name!r}): only the statistics '
        f'methods {sorted(_HISTORY_BUFFER_STATISTICS)} of mmengine\'s '
        'HistoryBuffer may be looked up by a checkpoint.')


# The statistics methods MMEngine registers by default
# (``HistoryBuffer._set_default_statistics``).
_HISTORY_BUFFER_STATISTICS = frozenset(('min', 'max', 'current', 'mean'))

# numpy 2 moved ``numpy.core`` to ``numpy._core``; checkpoints written with
# numpy 1 name the old module, so both names map to the same function.
_NP_MULTIARRAY = getattr(np, '_core', None) or np.core
_NUMPY_RECONSTRUCT = _NP_MULTIARRAY.multiarray._reconstruct
_NUMPY_SCALAR = _NP_MULTIARRAY.multiarray.scalar

# A pickled ``np.dtype('f8')`` is ``numpy.dtype('f8', ...)`` followed by a
# BUILD (``__setstate__``) on the result, whose class is a per-dtype subclass
# (``numpy.dtypes.Float64DType``); the unpickler only builds allowed classes.
# MMEngine logs numbers, so the numeric and bool dtypes are enough.
_NUMPY_NUMBER_DTYPES = tuple(
    (dtype_cls, f'{dtype_cls.__module__}.{dtype_cls.__qualname__}')
    for dtype_cls in sorted({
        type(np.dtype(code))
        for code in '?' + np.typecodes['AllInteger'] + np.typecodes['AllFloat']
    }, key=lambda c: c.__qualname__))

#: ``(object, pickled name)`` pairs that MMEngine checkpoints need beyond
#: torch's default allow-list. Found empirically, see the module docstring;
#: optimizer, scheduler, EMA and AMP loss-scaler states are tensors and
#: Python primitives and need nothing more.
CHECKPOINT_SAFE_GLOBALS: Tuple[Tuple[Any, str], ...] = (
    (HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
    (_history_buffer_getattr, 'builtins.getattr'),
    (np.ndarray, 'numpy.ndarray'),
    (np.dtype, 'numpy.dtype'),
    (_NUMPY_RECONSTRUCT, 'numpy._core.multiarray._reconstruct'),
    (_NUMPY_RECONSTRUCT, 'numpy.core.multiarray._reconstruct'),
    (_NUMPY_SCALAR, 'numpy._core.multiarray.scalar'),
    (_NUMPY_SCALAR, 'numpy.core.multiarray.scalar'),
) + _NUMPY_NUMBER_DTYPES


def _offending_globals(filename: str, error: Exception) -> List[str]:
    """Names of what ``filename`` pickles outside the allow-lists."""
    try:
        # Exact for zip checkpoints (everything torch >= 1.6 writes); it
        # accounts for the globals registered with ``add_safe_globals``.
        names = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except Exception:  # legacy (non-zip) format or unreadable archive
        names = []
    # torch's message names a refused global ("GLOBAL posix.system"), and
    # ours a refused attribute lookup ("Unsupported call getattr(...)").
    names += re.findall(r'GLOBAL (\S+)', str(error))
    names += re.findall(r'Unsupported call (getattr\(.*?\)):', str(error))
    return sorted(set(names))


def _unpickler_reason(error: Exception) -> str:
    """torch's weights-only error message without its boilerplate."""
    text = str(error).split('Check the documentation of torch.load')[0]
    text = re.sub(r'^Weights only load failed\..*?trusted source\.', '', text,
                  flags=re.S)
    text = text.split('WeightsUnpickler error:')[-1]
    return ' '.join(text.split())


def load_from_local(filename: str,
                    map_location: Optional[Any] = None) -> Dict[str, Any]:
    """Load a local checkpoint with ``weights_only=True``.

    Replaces MMEngine's loader of the same name (prefix ``''``), so that
    ``load_from``, ``--resume`` and ``init_cfg=dict(type='Pretrained')`` all
    go through it.

    Args:
        filename (str): Checkpoint path (``~`` is expanded).
        map_location (Any, optional): Same as :func:`torch.load`.

    Returns:
        dict: The loaded checkpoint.

    Raises:
        FileNotFoundError: If ``filename`` is not a file.
        UnsafeCheckpointError: If the file pickles a global outside torch's
            and :data:`CHECKPOINT_SAFE_GLOBALS`' allow-lists.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    try:
        # Explicit, so that TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD cannot turn the
        # safety off behind the user's back.
        return torch.load(
            filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        names = _offending_globals(filename, error)
        what = ', '.join(names) if names else 'an object'
        raise UnsafeCheckpointError(
            f'Refusing to load checkpoint {filename}: it pickles {what}, '
            'outside the allow-list (tensors, Python primitives and the '
            'mmengine/numpy classes in mmaction_sttm.compat). Loading it '
            'could run code from the file; nothing of it was run. If you '
            'trust the file, load it with torch.load(..., weights_only=False)'
            ' yourself and save only its state_dict. (torch: '
            f'{_unpickler_reason(error)})') from None


def load_from_http(filename: str,
                   map_location: Optional[Any] = None,
                   model_dir: Optional[str] = None,
                   progress: bool = False) -> Dict[str, Any]:
    """Download and load a checkpoint with ``weights_only=True``.

    Replaces MMEngine's http(s) loader (also behind ``modelzoo://``,
    ``torchvision://`` and ``open-mmlab://``), which calls
    ``torch.hub.load_state_dict_from_url`` with torch's default and so would
    unpickle arbitrary objects from a remote file. Rank 0 downloads first, as
    in MMEngine.

    Args:
        filename (str): URL of the checkpoint.
        map_location (Any, optional): Same as :func:`torch.load`.
        model_dir (str, optional): Download folder (torch hub's default).
        progress (bool): Show a download progress bar.

    Returns:
        dict: The loaded checkpoint.

    Raises:
        UnsafeCheckpointError: If the file pickles a global outside the
            allow-lists.
    """
    from mmengine.dist import get_dist_info

    def load() -> Dict[str, Any]:
        try:
            return torch.hub.load_state_dict_from_url(
                filename, model_dir=model_dir, map_location=map_location,
                progress=progress, weights_only=True)
        except pickle.UnpicklingError as error:
            raise UnsafeCheckpointError(
                f'Refusing to load checkpoint {filename}: '
                f'{_unpickler_reason(error)}. Loading it could run code '
                'from the file; nothing of it was run.') from None

    rank, world_size = get_dist_info()
    checkpoint = load() if rank == 0 else None
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            checkpoint = load()
    return checkpoint


def _filter_mmcv_lite_warning() -> None:
    warnings.filterwarnings(
        'ignore',
        message='Fail to import ``MultiScaleDeformableAttention``',
        category=UserWarning)


def _patch_checkpoint_loading() -> None:
    torch.serialization.add_safe_globals(list(CHECKPOINT_SAFE_GLOBALS))
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True)
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), loader=load_from_http, force=True)
    # torchvision:// and open-mmlab:// call the module-level function.
    mmengine_checkpoint.load_from_http = load_from_http


# --------------------------------------------------------------------------
# 2. Checkpoint writes that a kill cannot corrupt
# --------------------------------------------------------------------------


def atomic_write(data: Any, filepath: str, encoding: str = 'utf-8') -> None:
    """Write a file so that it is either complete or left as it was.

    The data goes to a temporary file in the target's folder, which is
    flushed to disk and renamed over the target (``os.replace`` is atomic
    within one file system). A process killed half-way leaves only the
    temporary file (``.NAME.*.tmp``), never a truncated ``NAME``.

    Args:
        data (bytes | str): Contents; ``str`` is encoded with ``encoding``.
        filepath (str): Target path; missing folders are created.
        encoding (str): Encoding of ``str`` data. Defaults to 'utf-8'.
    """
    if isinstance(data, str):
        data = data.encode(encoding)
    filepath = os.fspath(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=folder, prefix=f'.{osp.basename(filepath)}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # as open() would have created it
        os.replace(tmp, filepath)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable (a power cut, not only a kill).
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _local_put(self: LocalBackend, obj: bytes, filepath: Any) -> None:
    atomic_write(obj, filepath)


def _local_put_text(self: LocalBackend, obj: str, filepath: Any,
                    encoding: str = 'utf-8') -> None:
    atomic_write(obj, filepath, encoding)


def _remove_dead_temporaries(filepath: str) -> None:
    """Delete what :func:`atomic_write` left of ``filepath`` in a process
    that was killed while writing it (called once it is written again)."""
    folder, name = osp.split(filepath)
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder or '.'):
            if entry.name.startswith(f'.{name}.') and entry.name.endswith(
                    '.tmp'):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _remove_checkpoint(backend: Any, path: str) -> None:
    if backend.isfile(path):
        backend.remove(path)
    elif backend.isdir(path):  # DeepSpeed saves folders
        backend.rmtree(path)


def _save_checkpoint_with_step(self: CheckpointHook, runner: Any, step: int,
                               meta: dict) -> None:
    """``CheckpointHook._save_checkpoint_with_step`` in a crash-safe order:
    save the new checkpoint, point ``last_checkpoint`` at it, and only then
    delete checkpoints beyond ``max_keep_ckpts``."""
    outdated = []
    # keep_ckpt_ids exists only with max_keep_ckpts > 0; a step already kept
    # was saved earlier in this epoch (regular and best checkpoints).
    if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and
                                        self.keep_ckpt_ids[-1] == step):
        if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
            outdated.append(self.keep_ckpt_ids.popleft())
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids',
                                       list(self.keep_ckpt_ids))
    filename = self.filename_tmpl.format(step)
    self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
    runner.message_hub.update_info('last_ckpt', self.last_ckpt)
    runner.save_checkpoint(
        self.out_dir,
        filename,
        self.file_client_args,
        save_optimizer=self.save_optimizer,
        save_param_scheduler=self.save_param_scheduler,
        meta=meta,
        by_epoch=self.by_epoch,
        backend_args=self.backend_args,
        **self.args)
    if not is_main_process():
        return
    atomic_write(self.last_ckpt, osp.join(runner.work_dir, 'last_checkpoint'))
    _remove_dead_temporaries(self.last_ckpt)
    for old in outdated:
        _remove_checkpoint(self.file_backend,
                           self.file_backend.join_path(
                               self.out_dir, self.filename_tmpl.format(old)))


class _DeferredRemoval:
    """A file backend whose ``remove`` / ``rmtree`` only note the path."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.paths: List[str] = []

    def remove(self, path: str) -> None:
        self.paths.append(path)

    def rmtree(self, path: str) -> None:
        self.paths.append(path)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)


_save_best_checkpoint_unsafe = CheckpointHook._save_best_checkpoint


def _save_best_checkpoint(self: CheckpointHook, runner: Any,
                          metrics: dict) -> None:
    """``CheckpointHook._save_best_checkpoint``, deleting the previous best
    checkpoint after the new one is saved instead of before."""
    backend = self.file_backend
    deferred = _DeferredRemoval(backend)
    self.file_backend = deferred
    try:
        _save_best_checkpoint_unsafe(self, runner, metrics)
    finally:
        self.file_backend = backend
    current = {getattr(self, 'best_ckpt_path', None),
               *getattr(self, 'best_ckpt_path_dict', {}).values()}
    for path in deferred.paths:
        if path not in current:
            _remove_checkpoint(backend, path)


def _patch_checkpoint_saving() -> None:
    LocalBackend.put = _local_put
    LocalBackend.put_text = _local_put_text
    CheckpointHook._save_checkpoint_with_step = _save_checkpoint_with_step
    CheckpointHook._save_best_checkpoint = _save_best_checkpoint


# --------------------------------------------------------------------------
# 3. Distributed runs on CPU
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------

_applied = False


def apply() -> None:
    """Apply the import-time fixes once (idempotent)."""
    global _applied
    if not _applied:
        _patch_checkpoint_loading()
        _patch_checkpoint_saving()
        _filter_mmcv_lite_warning()
        _applied = True


apply()
