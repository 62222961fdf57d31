"""Pretrained weights files named in a config: checked, switched off, and
the converter command that makes a missing one."""
import os.path as osp
from typing import Any, Dict, Iterator, Optional, Tuple

from mmaction_sttm.models.backbones.deprecated import RENAMED
from mmaction_sttm.models.catalog import FAMILIES, Converter
from .cli import ToolError
from .paths import _is_remote

# The converter of each backbone type that loads converted weights (the
# catalog's): a family's backbone, the MMAction2 backbone it stands in for
# and the deprecated names of the backbone.
_CONVERTERS: Dict[str, Converter] = {
    name: family.converter
    for family in FAMILIES if family.converter
    for name in (family.type, family.replaces) if name
}
_CONVERTERS.update({
    old: _CONVERTERS[new.__name__]
    for old, new in RENAMED.items() if new.__name__ in _CONVERTERS
})


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
        str | None: A command line, from the family's catalog entry
        (:class:`~mmaction_sttm.models.catalog.Converter`); its source file
        name is an example (an ImageNet ViT of the backbone's width in timm's
        layout; use ``--src-format mmpretrain`` for an mmpretrain file).
    """
    converter = _CONVERTERS.get(str(backbone.get('type', '')).split('.')[-1])
    return None if converter is None else converter.command(backbone, out)


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
