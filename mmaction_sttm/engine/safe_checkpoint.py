"""Checkpoint writes that a kill cannot corrupt, as a hook and a file
backend that a config names.

MMEngine writes a checkpoint straight to its final name, writes
``last_checkpoint`` in place, and with ``max_keep_ckpts`` deletes the oldest
checkpoint *before* saving the new one (the previous best one too, before
saving a new best). A run killed during a save (pre-emption, out of memory)
could be left with a truncated newest checkpoint and, with
``max_keep_ckpts=1``, with no usable checkpoint at all.

:class:`SafeCheckpointHook` (``default_hooks.checkpoint`` in
``configs/_base_/default_runtime.py``) writes local checkpoints through the
``'atomic_local'`` file backend (:class:`AtomicLocalBackend`: a temporary
file in the same folder, flushed to disk and renamed over the target, see
:func:`atomic_write`), writes ``last_checkpoint`` the same way, and deletes
outdated checkpoints only after the new one and ``last_checkpoint`` are in
place. A kill at any moment leaves the previous checkpoint and a
``last_checkpoint`` that points to a complete file. MMEngine's own
``CheckpointHook`` and ``LocalBackend`` are left as they are.
"""
import contextlib
import os
import os.path as osp
import tempfile
from typing import Any, List

from mmaction.registry import HOOKS
from mmengine.dist import is_main_process
from mmengine.fileio import register_backend
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook

__all__ = ['atomic_write', 'AtomicLocalBackend', 'SafeCheckpointHook']

#: Name of the file backend (``backend_args=dict(backend=...)``).
ATOMIC_BACKEND = 'atomic_local'


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


class AtomicLocalBackend(LocalBackend):
    """MMEngine's local file backend with writes through
    :func:`atomic_write`."""

    def put(self, obj: bytes, filepath: Any) -> None:
        """Write ``obj`` to ``filepath`` completely or not at all."""
        atomic_write(obj, filepath)

    def put_text(self,
                 obj: str,
                 filepath: Any,
                 encoding: str = 'utf-8') -> None:
        """Write ``obj`` to ``filepath`` completely or not at all."""
        atomic_write(obj, filepath, encoding)


register_backend(ATOMIC_BACKEND, AtomicLocalBackend)


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
    if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                        and self.keep_ckpt_ids[-1] == step):
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
        _remove_checkpoint(
            self.file_backend,
            self.file_backend.join_path(self.out_dir,
                                        self.filename_tmpl.format(old)))


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


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """MMEngine's ``CheckpointHook`` with crash-safe saving (see the module
    docstring). Takes every argument of ``CheckpointHook``; without
    ``backend_args`` / ``file_client_args``, a local ``out_dir`` is written
    through the ``'atomic_local'`` backend."""

    def __init__(self, *args, **kwargs) -> None:
        out_dir = kwargs.get('out_dir')
        remote = isinstance(out_dir, str) and '://' in out_dir
        if kwargs.get('backend_args') is None and kwargs.get(
                'file_client_args') is None and not remote:
            kwargs['backend_args'] = dict(backend=ATOMIC_BACKEND)
        super().__init__(*args, **kwargs)

    _save_checkpoint_with_step = _save_checkpoint_with_step

    def _save_best_checkpoint(self, runner: Any, metrics: dict) -> None:
        """``CheckpointHook._save_best_checkpoint``, deleting the previous
        best checkpoint after the new one is saved instead of before."""
        backend = self.file_backend
        deferred = _DeferredRemoval(backend)
        self.file_backend = deferred
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            self.file_backend = backend
        current = {
            getattr(self, 'best_ckpt_path', None),
            *getattr(self, 'best_ckpt_path_dict', {}).values()
        }
        for path in deferred.paths:
            if path not in current:
                _remove_checkpoint(backend, path)
