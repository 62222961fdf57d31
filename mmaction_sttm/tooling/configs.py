"""Loading a config and building its model, with the builder's errors as
one line."""
import contextlib
import os.path as osp
import re
import traceback
from typing import Any, Iterator, Optional

from .cli import ToolError
from .paths import require_file

# MMEngine's builder prefixes each level it passes through, e.g.
# "class `Recognizer3D` in mmaction/models/recognizers/recognizer3d.py: ";
# the message under them names the field.
_BUILDER_PREFIX = re.compile(r'class `[^`]+` in [^:]+: ')


@contextlib.contextmanager
def config_errors(what: str = 'config') -> Iterator[None]:
    """Report a config that does not build as a :class:`ToolError`.

    Wrap the code that builds from a config (``MODELS.build``,
    ``Runner.from_cfg``): a ``ValueError``, ``TypeError``, ``KeyError`` or
    ``AssertionError`` raised there is a wrong field or value of the config,
    reported by :func:`run` as ``<what>: <message>`` in one line (the
    builder's class prefixes dropped), the original error kept as its cause
    for ``--traceback``.

    Args:
        what (str): What was being built, for the message.
    """
    try:
        yield
    except (ValueError, TypeError, KeyError, AssertionError) as error:
        text = error.args[0] if (isinstance(error, KeyError)
                                 and error.args) else error
        message = _BUILDER_PREFIX.sub('', ' '.join(str(text).split()))
        raise ToolError(
            f'{what}: {message or type(error).__name__}') from error


def build_model(cfg: Any) -> Any:
    """The config's model, built before the Runner is.

    The Runner prints its environment and the whole config and makes the
    work dir before it builds the model, so a wrong model field (a merger
    typo) or a checkpoint that does not fit would come after hundreds of
    lines, with a work dir left behind. Building it here first makes them
    one line with nothing written. The Runner seeds its RNGs before it
    builds its own model, so this build changes no result.

    Args:
        cfg (Config): The merged config.

    Returns:
        nn.Module: The model, not initialised.
    """
    from mmengine.registry import init_default_scope

    from ..registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    with config_errors():
        return MODELS.build(cfg.model)


def load_config(path: str) -> Any:
    """``Config.fromfile`` with a one-line error for a missing file, and
    for a ``merger`` or ``reducer`` on a backbone that cannot merge
    (:func:`~mmaction_sttm.models.catalog.check_merging_backbone`).

    A config whose ``_base_`` names a missing file fails the same way, with
    the missing base named; a config that is not valid Python names the file
    and the line.

    Args:
        path (str): Config file.

    Returns:
        mmengine.config.Config: The loaded config.
    """
    from mmengine.config import Config

    from ..models.catalog import check_merging_backbone
    require_file(path, 'config')
    try:
        cfg = Config.fromfile(path)
    except FileNotFoundError as error:
        missing = getattr(error, 'filename', None) or str(error)
        raise ToolError(f'config {path}: {missing} (in its _base_) does not '
                        'exist') from None
    except AttributeError as error:
        hint = _external_base_hint(path, error)
        if hint is None:
            raise
        raise ToolError(f'config {path}: {hint}') from error
    except SyntaxError as error:
        # MMEngine parses the text without a file name ('<unknown>'); a
        # _base_ file with the error is named.
        where = (
            error.filename if error.filename not in (None,
                                                     '<unknown>') else path)
        line = f', line {error.lineno}' if error.lineno else ''
        raise ToolError(f'config {where}{line} is not valid Python: '
                        f'{error.msg}') from error
    try:
        check_merging_backbone(cfg.get('model', {}).get('backbone'))
    except ValueError as error:
        raise ToolError(f'config {path}: {error}') from None
    return cfg


def _external_base_hint(path: str, error: AttributeError) -> Optional[str]:
    """The fix for MMEngine 0.10's crash on ``_base_ = 'mmaction::...'``.

    MMEngine looks an external base up in the package's model index first,
    and reads every metafile entry's ``Config`` as a string; MMAction2 has
    entries whose ``Config`` is a list, so the lookup ends in
    ``AttributeError: 'list' object has no attribute 'partition'``. Naming
    the base by its file avoids the lookup.

    Args:
        path (str): The config that was being loaded.
        error (AttributeError): What ``Config.fromfile`` raised.

    Returns:
        str, optional: One line naming each ``package::`` base of ``path``
        and its file; None if ``error`` is not that crash.
    """
    frames = traceback.extract_tb(error.__traceback__)
    if not any(f.name == '_get_cfg_metainfo' for f in frames):
        return None
    from mmengine.utils import get_installed_path
    try:
        with open(path) as f:
            names = re.findall(r'[\'"](\w+)::([^\'"]+)[\'"]', f.read())
    except OSError:
        names = []
    files = []
    for package, name in names:
        try:
            root = get_installed_path(package)
        except Exception:  # noqa: BLE001 (not installed: say the name)
            root = f'<{package}>'
        files.append(f"'{package}::{name}' -> "
                     f"'{osp.join(root, '.mim', 'configs', name)}'")
    found = '; '.join(files) or 'its package:: bases'
    return ("MMEngine cannot look up 'package::' bases in this "
            "installation (a model-index entry whose Config is a list); "
            f'name each base by its file instead: {found}')


def build_runner(cfg: Any) -> Any:
    """The runner a complete config asks for: MMEngine's ``Runner``, or
    (MMAction2's choice) the one its ``runner_type`` names, e.g.
    ``'FlexibleRunner'`` with an FSDP strategy. Built inside
    :func:`config_errors`.

    Args:
        cfg (Config): The complete config.

    Returns:
        Runner or FlexibleRunner: The runner.
    """
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    with config_errors():
        if 'runner_type' not in cfg:
            return Runner.from_cfg(cfg)
        return RUNNERS.build(cfg)


@contextlib.contextmanager
def runner_checkpoint_loading(cfg: Any) -> Iterator[None]:
    """Wrap a runner's ``train()`` / ``test()``: safe checkpoint loading
    (:func:`~mmaction_sttm.engine.safe_checkpoint_loading`) from the start
    when the config asks for it (``default_hooks.checkpoint_loading`` is a
    ``SafeCheckpointLoadingHook``) and names a ``runner_type``.

    MMEngine's ``FlexibleRunner`` loads ``load_from`` and resumes before
    any hook's ``before_run``, so the hook alone comes too late for it; the
    ``Runner`` loads after, and the hook is enough.
    """
    hook = (cfg.get('default_hooks') or {}).get('checkpoint_loading') or {}
    if 'runner_type' in cfg and hook.get('type') in (
            'SafeCheckpointLoadingHook', 'mmaction.SafeCheckpointLoadingHook'):
        from mmaction_sttm.engine import safe_checkpoint_loading
        with safe_checkpoint_loading():
            yield
    else:
        yield
