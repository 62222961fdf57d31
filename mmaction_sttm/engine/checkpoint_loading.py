"""Safe checkpoint loading under torch >= 2.6, switched on by a hook that a
config names.

``torch.load`` defaults to ``weights_only=True``, and MMEngine 0.10.7 cannot
load its own checkpoints any more (``--resume``, ``load_from``): their
``message_hub`` pickles :class:`~mmengine.logging.HistoryBuffer` objects
holding numpy arrays, numpy scalars and dtypes. We keep ``weights_only=True``
and allow-list exactly the globals that MMEngine writes (found with
``torch.serialization.get_unsafe_globals_in_checkpoint`` on checkpoints saved
by a Runner with optimizer, parameter schedulers, EMA and the message hub).
The allow-list applies only inside our loaders (torch's global list is left
as it is). The loaders turn torch's ``UnpicklingError`` into
:class:`UnsafeCheckpointError`, naming the file and the offending globals.
Nothing of a refused pickle runs: the weights-only unpickler refuses the
global before anything is called.

They take over MMEngine's ``CheckpointLoader`` schemes ``''``, ``'http://'``
and ``'https://'`` only while :func:`safe_checkpoint_loading` is active, and
the previous loaders are put back when it ends. A Runner turns it on with
:class:`SafeCheckpointLoadingHook` (``default_hooks.checkpoint_loading`` in
``configs/_base_/default_runtime.py``) from ``before_run`` to ``after_run``,
which covers ``load_from``, ``resume`` and a ``Pretrained`` init. Importing
:mod:`mmaction_sttm` changes none of this.
"""
import contextlib
import inspect
import logging
import os.path as osp
import pickle
import re
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import mmengine.runner.checkpoint as mmengine_checkpoint
import numpy as np
import torch
from mmaction.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner.checkpoint import CheckpointLoader

__all__ = [
    'UnsafeCheckpointError', 'CHECKPOINT_SAFE_GLOBALS', 'load_from_local',
    'load_from_http', 'safe_checkpoint_loading', 'SafeCheckpointLoadingHook',
    'supported'
]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint pickles objects outside the allow-list.

    Subclasses :class:`pickle.UnpicklingError`, which is what ``torch.load``
    raises for the same reason, so existing handlers keep working.
    """


class NotACheckpointError(ValueError):
    """A file that ``torch.load`` cannot read as a checkpoint at all
    (truncated, corrupt, or another kind of file), as opposed to one that
    pickles something unsafe (:class:`UnsafeCheckpointError`)."""


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
    # A ShardedTensor (FSDP's sharded state dicts) pickles its nested
    # ``ProcessGroupState`` named tuple as ``getattr(ShardedTensor, ...)``.
    if name == 'ProcessGroupState' and torch.distributed.is_available():
        from torch.distributed._shard.sharded_tensor import ShardedTensor
        if obj is ShardedTensor:
            return ShardedTensor.ProcessGroupState
    raise pickle.UnpicklingError(
        f'Unsupported call getattr({obj!r}, {name!r}): only the statistics '
        f'methods {sorted(_HISTORY_BUFFER_STATISTICS)} of mmengine\'s '
        'HistoryBuffer (and ShardedTensor.ProcessGroupState) may be looked '
        'up by a checkpoint.')


# The statistics methods MMEngine registers by default
# (``HistoryBuffer._set_default_statistics``).
_HISTORY_BUFFER_STATISTICS = frozenset(('min', 'max', 'current', 'mean'))

# numpy 2 moved ``numpy.core`` to ``numpy._core``; checkpoints written with
# numpy 1 name the old module, so both names map to the same function.
# (numpy 1.26 has a ``numpy._core`` stub whose ``multiarray`` is loaded only
# by an import, so it is imported, not looked up.)
from numpy._core import multiarray as _np_multiarray  # noqa: E402

_NUMPY_RECONSTRUCT = _np_multiarray._reconstruct
_NUMPY_SCALAR = _np_multiarray.scalar

# A pickled ``np.dtype('f8')`` is ``numpy.dtype('f8', ...)`` followed by a
# BUILD (``__setstate__``) on the result, whose class is a per-dtype subclass
# (``numpy.dtypes.Float64DType``); the unpickler only builds allowed classes.
# MMEngine logs numbers, so the numeric and bool dtypes are enough.
_NUMPY_NUMBER_DTYPES = tuple(
    (dtype_cls, f'{dtype_cls.__module__}.{dtype_cls.__qualname__}')
    for dtype_cls in sorted(
        {
            type(np.dtype(code))
            for code in '?' + np.typecodes['AllInteger'] +
            np.typecodes['AllFloat']
        },
        key=lambda c: c.__qualname__))

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


def _sharded_tensor_globals() -> Tuple[Tuple[Any, str], ...]:
    """The classes of torch's ``ShardedTensor``, which FSDP's sharded state
    dicts (one file per rank, ``state_dict_type='SHARDED_STATE_DICT'``)
    pickle: data classes of torch itself (shard offsets and sizes, the
    sharding spec, the local shards); building one needs the process group
    of the run that loads it."""
    if not torch.distributed.is_available():
        return ()
    from torch.distributed._shard.metadata import ShardMetadata
    from torch.distributed._shard.sharded_tensor import ShardedTensor
    from torch.distributed._shard.sharded_tensor.metadata import (
        MEM_FORMAT_ENCODING, ShardedTensorMetadata, TensorProperties)
    from torch.distributed._shard.sharded_tensor.shard import Shard
    from torch.distributed._shard.sharding_spec import ChunkShardingSpec
    from torch.distributed.remote_device import _remote_device
    return tuple((cls, f'{cls.__module__}.{cls.__qualname__}')
                 for cls in (ShardedTensor, ShardedTensor.ProcessGroupState,
                             ShardedTensorMetadata, TensorProperties,
                             MEM_FORMAT_ENCODING, Shard, ShardMetadata,
                             ChunkShardingSpec, _remote_device))


def _allow_listed() -> contextlib.AbstractContextManager:
    """MMEngine's globals allow-listed for weights-only loading, inside the
    ``with`` block only (nothing from torch < 2.6: see :func:`supported`)."""
    if not supported():
        return contextlib.nullcontext()
    return torch.serialization.safe_globals(
        list(CHECKPOINT_SAFE_GLOBALS) + list(_sharded_tensor_globals()))


allow_listed = _allow_listed


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


# What torch's weights-only unpickler says when it refuses something the
# file asks for (as opposed to bytes it cannot parse at all).
_REFUSAL = re.compile(r'GLOBAL|Unsupported call|Unsupported class|allowlist|'
                      r'safe_globals|Can only build|not an allowed')


def _unpickler_reason(error: Exception) -> str:
    """torch's weights-only error message without its boilerplate."""
    text = str(error).split('Check the documentation of torch.load')[0]
    text = re.sub(
        r'^Weights only load failed\..*?trusted source\.',
        '',
        text,
        flags=re.S)
    text = text.split('WeightsUnpickler error:')[-1]
    return ' '.join(text.split())


def load_from_local(filename: str,
                    map_location: Optional[Any] = None) -> Dict[str, Any]:
    """Load a local checkpoint with ``weights_only=True``.

    Takes the place of MMEngine's loader of the same name (prefix ``''``)
    under :func:`safe_checkpoint_loading`, so that ``load_from``,
    ``--resume`` and ``init_cfg=dict(type='Pretrained')`` all go through it.
    Can also be called directly.

    Args:
        filename (str): Checkpoint path (``~`` is expanded).
        map_location (Any, optional): Same as :func:`torch.load`.

    Returns:
        dict: The loaded checkpoint.

    Raises:
        FileNotFoundError: If ``filename`` is not a file.
        UnsafeCheckpointError: If the file pickles a global outside torch's
            and :data:`CHECKPOINT_SAFE_GLOBALS`' allow-lists.
        NotACheckpointError: If torch cannot read the file as a checkpoint
            (truncated, corrupt, another kind of file).
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    with _allow_listed():
        try:
            # Explicit, so that TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD cannot turn
            # the safety off behind the user's back.
            # Below torch 2.6 the allow-list cannot be expressed and safe
            # loading is off (see :func:`supported`): a full unpickle, as
            # MMEngine's own loader does there.
            return torch.load(
                filename, map_location=map_location, weights_only=supported())
        except (OSError, RuntimeError, EOFError) as error:
            # A zip archive cut short, or bytes that are no archive.
            raise NotACheckpointError(
                f'{filename} is not a checkpoint that torch can read '
                f'(truncated or corrupt? download it again): '
                f'{" ".join(str(error).split())}') from None
        except pickle.UnpicklingError as error:
            names = _offending_globals(filename, error)
            if not names and not _REFUSAL.search(str(error)):
                # Nothing refused: the bytes are not a pickle of a
                # checkpoint (truncated, corrupt), not a pickle of code.
                raise NotACheckpointError(
                    f'{filename} is not a checkpoint that torch can read '
                    f'(truncated or corrupt? download it again): '
                    f'{_unpickler_reason(error)}') from None
            what = ', '.join(names) if names else 'an object'
            raise UnsafeCheckpointError(
                f'Refusing to load checkpoint {filename}: it pickles '
                f'{what}, outside the allow-list (tensors, Python '
                'primitives and the mmengine/numpy classes in '
                'mmaction_sttm.engine.checkpoint_loading). Loading it '
                'could run code from the file; nothing of it was run. If '
                'you trust the file, load it with torch.load(..., '
                'weights_only=False) yourself and save only its '
                f'state_dict. (torch: {_unpickler_reason(error)})') from None


def load_from_http(filename: str,
                   map_location: Optional[Any] = None,
                   model_dir: Optional[str] = None,
                   progress: bool = False) -> Dict[str, Any]:
    """Download and load a checkpoint with ``weights_only=True``.

    Takes the place of MMEngine's http(s) loader (also behind
    ``modelzoo://``, ``torchvision://`` and ``open-mmlab://``) under
    :func:`safe_checkpoint_loading`. MMEngine's calls
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
            with _allow_listed():
                return torch.hub.load_state_dict_from_url(
                    filename,
                    model_dir=model_dir,
                    map_location=map_location,
                    progress=progress,
                    weights_only=True)
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


def supported() -> bool:
    """Whether this torch can allow-list :data:`CHECKPOINT_SAFE_GLOBALS`.

    ``torch.serialization.add_safe_globals`` takes ``(object, name)`` pairs
    from torch 2.6 on (2.4 and 2.5 take objects only, which cannot map
    ``builtins.getattr`` and numpy 1's module names to the stand-ins above).
    Before 2.6, ``torch.load`` does not default to weights-only loading, so
    MMEngine's own loaders load its checkpoints (and any pickle) as they
    always did.
    """
    version = tuple(int(v) for v in re.findall(r'\d+', torch.__version__)[:2])
    return version >= (2, 6)


@contextlib.contextmanager
def safe_checkpoint_loading() -> Iterator[None]:
    """Load checkpoints through :func:`load_from_local` and
    :func:`load_from_http` inside the ``with`` block.

    Registers them as MMEngine's ``CheckpointLoader`` schemes ``''``,
    ``'http://'`` and ``'https://'``, and as
    ``mmengine.runner.checkpoint.load_from_http`` (which ``torchvision://``
    and ``open-mmlab://`` call directly); on exit the loaders that were
    there before are put back. Nests.

    Example:
        >>> from mmengine.runner import load_checkpoint
        >>> with safe_checkpoint_loading():
        ...     load_checkpoint(model, 'work_dirs/run/epoch_3.pth')
    """
    if not supported():
        print_log(
            f'torch {torch.__version__}: safe checkpoint loading '
            '(weights-only, with MMEngine\'s allow-list) needs torch >= 2.6 '
            'and is off; MMEngine\'s loaders unpickle checkpoints fully, so '
            'load only checkpoints you trust.',
            logger='current',
            level=logging.WARNING)
        yield
        return
    # register_scheme writes into the dict it finds: keep a copy.
    schemes = CheckpointLoader._schemes.copy()
    http_loader = mmengine_checkpoint.load_from_http
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True)
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), loader=load_from_http, force=True)
    mmengine_checkpoint.load_from_http = load_from_http
    try:
        yield
    finally:
        CheckpointLoader._schemes = schemes
        mmengine_checkpoint.load_from_http = http_loader


@HOOKS.register_module()
class SafeCheckpointLoadingHook(Hook):
    """Load the run's checkpoints with :func:`safe_checkpoint_loading`.

    Active from ``before_run`` to ``after_run`` of ``Runner.train``,
    ``val`` and ``test``, so ``load_from``, ``resume`` (explicit or from
    ``last_checkpoint``) and a backbone's ``Pretrained`` init all load with
    ``weights_only=True`` and the allow-list. A config turns it on with::

        default_hooks = dict(
            checkpoint_loading=dict(type='SafeCheckpointLoadingHook'))

    (``configs/_base_/default_runtime.py`` does). A run that raises leaves
    the loaders registered until the process ends: MMEngine calls no hook
    on an exception.
    """

    # Before any other hook's before_run, in case one loads a checkpoint.
    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._active = contextlib.ExitStack()

    def before_run(self, runner: Any) -> None:
        """Register the safe loaders for this run."""
        self._active.close()  # a second run of the same Runner
        self._active.enter_context(safe_checkpoint_loading())

    def after_run(self, runner: Any) -> None:
        """Put MMEngine's loaders back."""
        self._active.close()
