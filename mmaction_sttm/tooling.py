"""One-line errors for the command-line tools in ``tools/``.

A missing config, checkpoint, data or pretrained-weights path is a usage
error, not a bug: the tools report it as one line that names the path and
exit with status 2 (argparse's status for bad usage), instead of a traceback
from deep inside MMEngine. They check what they will read before building
anything, and :func:`run` turns what slips through (a ``FileNotFoundError``
raised later) into the same one line. A config that does not build (an
unknown key, a value out of range) is a usage error too: the tools build
inside :func:`config_errors`, which reports the builder's last word (the
field, the value, the closest key) as one line. ``--traceback``
(:func:`add_traceback_flag`) shows the full traceback instead.

Typical use in a tool::

    from mmaction_sttm import tooling

    def main(argv=None):
        args = parse_args(argv)  # its parser calls tooling.add_traceback_flag
        cfg = tooling.load_config(args.config)
        tooling.require_file(args.checkpoint, 'checkpoint')
        tooling.check_data_paths(cfg, ['test'])
        with tooling.config_errors():
            model = MODELS.build(cfg.model)
        ...

    if __name__ == '__main__':
        tooling.run(main)
"""
import argparse
import contextlib
import os
import os.path as osp
import re
import sys
import traceback
from typing import Any, Callable, Iterator, List, Optional, Sequence, Tuple

from mmaction_sttm.models.backbones.deprecated import RENAMED
from mmaction_sttm.models.catalog import FAMILIES

#: Exit status of a tool that was pointed at something that is not there.
EXIT_USAGE = 2

#: Share of a model's own weights (mergers' not counted) that a checkpoint
#: must hold for a tool to load it.
MIN_KEY_SHARE = 0.5

TRACEBACK_FLAG = '--traceback'


class ToolError(Exception):
    """A user-facing error of a tool, reported as one line (exit status 2)."""


def add_traceback_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--traceback`` to a tool's parser: errors that :func:`run`
    reports as one line are raised with their full traceback instead.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
    """
    parser.add_argument(
        TRACEBACK_FLAG,
        action='store_true',
        help='on a usage or config error, show the full traceback instead '
        'of one line')


def add_runner_args(parser: argparse.ArgumentParser) -> None:
    """Add the options that MMAction2's ``train.py`` and ``test.py`` share:
    ``--cfg-options``, ``--launcher``, ``--local-rank`` and ``--traceback``.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
    """
    from mmengine.config import DictAction
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    add_traceback_flag(parser)


def parse_runner_args(parser: argparse.ArgumentParser,
                      argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the arguments of a parser with :func:`add_runner_args`, and
    set ``LOCAL_RANK`` from ``--local-rank`` when no launcher set it.

    Args:
        parser (argparse.ArgumentParser): The tool's parser.
        argv (list[str], optional): Arguments; None reads ``sys.argv``.

    Returns:
        argparse.Namespace: The parsed arguments.
    """
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


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

    from .registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    with config_errors():
        return MODELS.build(cfg.model)


def _is_remote(path: str) -> bool:
    # s3://, http(s)://, open-mmlab://, torchvision:// ...: MMEngine's file
    # backends resolve them; only local files can be checked up front.
    return '://' in path


def require_file(path: str, what: str) -> None:
    """Raise :class:`ToolError` unless ``path`` is an existing local file
    (remote URIs pass unchecked).

    Args:
        path (str): The path given by the user.
        what (str): What it is, for the message (``'config'``,
            ``'checkpoint'``, ``'--resume checkpoint'`` ...).
    """
    if _is_remote(path):
        return
    if osp.isdir(path):
        raise ToolError(f'{what} {path} is a folder, not a file')
    if not osp.isfile(path):
        raise ToolError(f'{what} {path} does not exist')


def require_dir(path: str, what: str) -> None:
    """Raise :class:`ToolError` unless ``path`` is an existing local folder
    (remote URIs pass unchecked).

    Args:
        path (str): The path given by the user.
        what (str): What it is, for the message.
    """
    if not _is_remote(path) and not osp.isdir(path):
        raise ToolError(f'{what} {path} does not exist')


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

    from .models.catalog import check_merging_backbone
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


def _datasets(dataset: Any) -> Iterator[Any]:
    """The dataset configs in ``dataset``, through MMEngine's wrappers
    (``RepeatDataset``, ``ClassBalancedDataset``, ``ConcatDataset``)."""
    if not isinstance(dataset, dict):
        return
    if isinstance(dataset.get('datasets'), (list, tuple)):
        for inner in dataset['datasets']:
            yield from _datasets(inner)
    elif isinstance(dataset.get('dataset'), dict):
        yield from _datasets(dataset['dataset'])
    else:
        yield dataset


def _joined(data_root: str, path: str) -> str:
    # MMEngine's BaseDataset joins relative paths to data_root the same way.
    if data_root and not osp.isabs(path) and not _is_remote(path):
        return osp.join(data_root, path)
    return path


def check_data_paths(cfg: Any, loaders: Sequence[str]) -> None:
    """Check the annotation files and video folders a run will read.

    Args:
        cfg (Config): The full config.
        loaders (Sequence[str]): Which dataloaders the tool uses, e.g.
            ``['train', 'val']`` or ``['test']``; one missing from the config
            (``--no-validate``) is skipped.
    """
    for loader in loaders:
        loader_cfg = cfg.get(f'{loader}_dataloader')
        if not loader_cfg:
            continue
        for dataset in _datasets(loader_cfg.get('dataset')):
            data_root = dataset.get('data_root') or ''
            ann_file = dataset.get('ann_file')
            if isinstance(ann_file, str) and ann_file:
                require_file(
                    _joined(data_root, ann_file),
                    f'{loader}_dataloader.dataset.ann_file')
            prefix = dataset.get('data_prefix')
            if isinstance(prefix, dict):
                for key, folder in prefix.items():
                    if isinstance(folder, str) and folder:
                        require_dir(
                            _joined(data_root, folder),
                            f'{loader}_dataloader.dataset.data_prefix.{key}')


# The converter's --dst for each backbone type that loads converted weights:
# a family's backbone and the MMAction2 backbone it stands in for.
_CONVERTER_DST = {
    name: family.converter_dst
    for family in FAMILIES if family.converter_dst
    for name in (family.type, family.replaces) if name
}
_CONVERTER_DST.update({
    old: _CONVERTER_DST[new.__name__]
    for old, new in RENAMED.items() if new.__name__ in _CONVERTER_DST
})

# An ImageNet source file by width (timm's DeiT file names, the weights the
# zoo's configs assume), for the message only.
_SOURCE_NAMES = {
    192: 'deit_tiny_patch16_224.pth',
    384: 'deit_small_patch16_224.pth',
    768: 'deit_base_patch16_224.pth'
}


def _weight_paths(node: Any,
                  key: str = 'model') -> Iterator[Tuple[str, str, Any]]:
    """``(config key, path, owning dict)`` of every local weights file in a
    model config: ``pretrained='...'`` and
    ``init_cfg=dict(type='Pretrained', checkpoint='...')``."""
    if isinstance(node, dict):
        pretrained = node.get('pretrained')
        if isinstance(pretrained, str) and pretrained:
            yield f'{key}.pretrained', pretrained, node
        init_cfgs = node.get('init_cfg')
        if isinstance(init_cfgs, dict):
            init_cfgs = [init_cfgs]
        for i, init in enumerate(init_cfgs or []):
            if (isinstance(init, dict) and init.get('type') == 'Pretrained'
                    and isinstance(init.get('checkpoint'), str)):
                name = f'{key}.init_cfg' + (f'[{i}]' if isinstance(
                    node['init_cfg'], list) else '')
                yield f'{name}.checkpoint', init['checkpoint'], node
        for name, value in node.items():
            if name not in ('pretrained', 'init_cfg'):
                yield from _weight_paths(value, f'{key}.{name}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _weight_paths(value, f'{key}[{i}]')


def converter_command(backbone: dict, out: str) -> Optional[str]:
    """The ``tools/convert_weights.py`` command that writes ``out`` for a
    backbone config, or None for a backbone the converter does not serve.

    Args:
        backbone (dict): The backbone's config (``type`` and its arguments).
        out (str): The weights file the config expects.

    Returns:
        str | None: A command line; its source file name is an example (an
        ImageNet ViT of the backbone's width in timm's layout; use
        ``--src-format mmpretrain`` for an mmpretrain file).
    """
    dst = _CONVERTER_DST.get(str(backbone.get('type', '')).split('.')[-1])
    if dst is None:
        return None
    source = _SOURCE_NAMES.get(
        backbone.get('embed_dims', 768), 'imagenet_vit.pth')
    command = (f'python tools/convert_weights.py {source} {out} '
               f'--src-format timm --dst {dst}')
    if dst == 'videomae-vit':
        command += (f' --num-frames {backbone.get("num_frames", 16)}'
                    f' --tubelet-size {backbone.get("tubelet_size", 2)}')
        if not backbone.get('use_learnable_pos_emb', False):
            command += ' --videomae-pos-embed sincos'
    return command


def check_pretrained(cfg: Any) -> None:
    """Check that the local weights files named in ``cfg.model`` exist.

    A missing file raises :class:`ToolError` naming the config key and the
    ``tools/convert_weights.py`` command that makes the file.

    Args:
        cfg (Config): The full config.
    """
    for key, path, owner in _weight_paths(cfg.get('model')):
        if _is_remote(path) or osp.isfile(path):
            continue
        command = converter_command(owner, path)
        hint = (f'; make it from an ImageNet ViT checkpoint with: {command} '
                '(or --src-format mmpretrain; docs/getting_started.md)'
                if command else '')
        raise ToolError(f'pretrained weights file {path} ({key}) does not '
                        f'exist{hint}; or set {key}=None to start without it')


def _dicts(node: Any) -> Iterator[dict]:
    """Every dict in a nested config, outermost first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _dicts(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _dicts(value)


def disable_pretrained(model_cfg: Any) -> None:
    """Switch off every weights file in a model config, in place, so that
    building the model reads no file (``pretrained=None``, ``Pretrained``
    entries dropped from ``init_cfg``).

    Args:
        model_cfg (dict): ``cfg.model``.
    """
    for owner in list(_dicts(model_cfg)):
        if owner.get('pretrained'):
            # None for a path, False for timm's `pretrained=True`.
            owner['pretrained'] = (None if isinstance(owner['pretrained'], str)
                                   else False)
        init_cfgs = owner.get('init_cfg')
        if isinstance(init_cfgs, dict):
            if init_cfgs.get('type') == 'Pretrained':
                owner['init_cfg'] = None
        elif isinstance(init_cfgs, (list, tuple)):
            owner['init_cfg'] = [
                init for init in init_cfgs
                if not (isinstance(init, dict)
                        and init.get('type') == 'Pretrained')
            ] or None


def _merger_prefixes(model: Any) -> Tuple[str, ...]:
    """State-dict prefixes of the merging modules in ``model``: a merger
    added to a trained model (off the shelf) has no weights in its
    checkpoint."""
    from mmaction_sttm.models.merge_schedule import MergeSchedule
    from mmaction_sttm.models.mergers.base import Merger
    return tuple(f'{name}.' for name, module in model.named_modules()
                 if isinstance(module, (MergeSchedule, Merger)))


def checkpoint_match(model: Any, state: dict) -> Tuple[int, int]:
    """How many of a model's own weights a state dict holds.

    Args:
        model (nn.Module): The model (a DDP wrapper is looked through).
        state (dict): The checkpoint's ``state_dict`` (a ``module.``
            prefix is stripped, as MMEngine's loader does).

    Returns:
        tuple[int, int]: Keys of the model found in ``state`` with the same
        shape, and the model's keys; the weights of mergers (STTM and the
        other :mod:`~mmaction_sttm.models.mergers`) are not counted.
    """
    model = getattr(model, 'module', model)
    state = {
        (k[len('module.'):] if k.startswith('module.') else k): v
        for k, v in state.items()
    }
    skip = _merger_prefixes(model)
    own = {
        k: v
        for k, v in model.state_dict().items() if not k.startswith(skip)
    }
    matched = sum(
        1 for k, v in own.items()
        if k in state and getattr(state[k], 'shape', None) == v.shape)
    return matched, len(own)


def check_checkpoint(model: Any,
                     path: str,
                     min_share: float = MIN_KEY_SHARE) -> None:
    """Refuse a checkpoint that holds few of the model's weights (the wrong
    model, or the wrong config for it), before a tool loads it.

    Args:
        model (nn.Module): The built model.
        path (str): Checkpoint file (MMEngine layout or a plain state dict).
        min_share (float): Share of the model's keys (mergers' not counted)
            that must be found with their shape. Default: 0.5.
    """
    from mmengine.runner import CheckpointLoader

    from mmaction_sttm.engine.checkpoint_loading import (
        NotACheckpointError, UnsafeCheckpointError, safe_checkpoint_loading)
    require_file(path, 'checkpoint')
    try:
        # Read as the zoo's runs read it (the allow-listed safe loader), so
        # that MMEngine's own checkpoints pass on torch >= 2.6 too.
        with safe_checkpoint_loading():
            checkpoint = CheckpointLoader.load_checkpoint(
                path, map_location='cpu')
    except NotACheckpointError as error:
        raise ToolError(f'checkpoint {error_line(error)}') from error
    except UnsafeCheckpointError as error:
        reason = re.sub(r'^Refusing to load checkpoint \S+: ', '',
                        error_line(error))
        raise ToolError(f'checkpoint {path} is unsafe: {reason}') from error
    except (OSError, RuntimeError, ValueError, EOFError) as error:
        raise ToolError(f'checkpoint {path} cannot be read: '
                        f'{error_line(error)}') from error
    state = checkpoint
    if isinstance(checkpoint, dict) and isinstance(
            checkpoint.get('state_dict'), dict):
        state = checkpoint['state_dict']
    if not isinstance(state, dict):
        raise ToolError(f'checkpoint {path} holds no state dict (got '
                        f'{type(state).__name__})')
    matched, total = checkpoint_match(model, state)
    if total and matched < min_share * total:
        raise ToolError(
            f'checkpoint {path} matches {matched} of {total} model keys '
            f'(need at least {min_share:.0%}; merger weights not counted); '
            'wrong model or config?')


def error_line(error: BaseException) -> str:
    """The one-line message for an error :func:`run` reports."""
    if isinstance(error, FileNotFoundError) and error.filename:
        return f'{error.filename} does not exist'
    return ' '.join(str(error).split())


def run(main: Callable[..., Any], argv: Optional[List[str]] = None) -> None:
    """Run a tool's ``main`` and exit with its status; a :class:`ToolError`
    or a ``FileNotFoundError`` becomes one line on stderr and status 2
    (raised with its traceback when the command line has ``--traceback``).

    Args:
        main (Callable): The tool's entry point; called with ``argv`` when
            given, else without arguments. An int it returns is the status.
        argv (list[str], optional): Command line without the program name.
    """
    command_line = sys.argv[1:] if argv is None else argv
    try:
        status = main(argv) if argv is not None else main()
    except (ToolError, FileNotFoundError) as error:
        if TRACEBACK_FLAG in command_line:
            raise
        prog = osp.basename(sys.argv[0]) or 'tool'
        print(
            f'{prog}: error: {error_line(error)}', file=sys.stderr, flush=True)
        sys.exit(EXIT_USAGE)
    sys.exit(status if isinstance(status, int) else 0)
