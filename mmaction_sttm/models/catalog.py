"""The backbone families, listed once.

Everything the tests and tools need to know about a family that its class does
not say itself: a short name, a title for reports, the backbone class, the
MMAction2 backbone it stands in for, the weight converter that makes its
weights file (:class:`Converter`), and a tiny configuration (3 blocks,
patches of 8 pixels, 2 heads).
The tests build every family from here, ``tools/analysis_tools/gpu_check.py``
checks every family from here, the tools' error helpers take the converter
command from here and ``tools/visualize_merging.py`` swaps MMAction2's
backbones from here. A new family is one backbone file and one entry in
:data:`FAMILIES` (see ``docs/architecture.md``).
"""
import os.path as osp
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple, Type

from ..registry import MODELS
from .backbones import (MergingBackbone, MergingMMPretrainViT,
                        MergingTimeSformer, MergingTimmViT,
                        MergingVisionTransformer, SpaceTimeViT)

__all__ = [
    'Converter', 'Family', 'FAMILIES', 'family', 'check_merging_backbone',
    'TINY_DEPTH', 'TINY_PATCH'
]

#: Blocks and patch size of every tiny configuration.
TINY_DEPTH, TINY_PATCH, TINY_HEADS = 3, 8, 2

#: An ImageNet ViT checkpoint by width, in timm's file names (DeiT, the
#: weights the zoo's configs assume): the source the converter command of
#: an error message names, as an example.
DEIT_SOURCES = {
    192: 'deit_tiny_patch16_224.pth',
    384: 'deit_small_patch16_224.pth',
    768: 'deit_base_patch16_224.pth'
}

#: VideoMAE's self-supervised checkpoints, by the pretraining tag that the
#: zoo's weights file names carry (``vit-large-p16_videomae-k400-pre_...``):
#: the released file's name, as an example in messages, and its
#: ``--src-format``. A file so named is converted from it, not from an
#: ImageNet ViT.
VIDEOMAE_SOURCES = {'videomae-k400-pre': ('checkpoint-1599.pth', 'videomae')}


def _no_options(backbone: dict) -> List[str]:
    return []


@dataclass(frozen=True)
class Converter:
    """How ``tools/convert_weights.py`` makes a family's weights file from
    an ImageNet ViT.

    Args:
        dst (str): The converter's ``--dst``.
        options (callable): ``backbone config -> [flags]``: the converter's
            options that depend on the backbone (its clip length, tubelets,
            position embedding). Defaults to none.
        sources (dict): Source file name by ``embed_dims``, as an example in
            messages. Defaults to :data:`DEIT_SOURCES`.
    """

    dst: str
    options: Callable[[dict], List[str]] = _no_options
    sources: Dict[int, str] = field(default_factory=lambda: DEIT_SOURCES)

    def command(self, backbone: dict, out: str) -> str:
        """The command that writes ``out`` for ``backbone`` (its config).

        Args:
            backbone (dict): The backbone's config.
            out (str): The weights file to write.

        Returns:
            str: A command line (its source file is an example).
        """
        if self.dst == 'videomae-vit':
            for tag, (source, src_format) in VIDEOMAE_SOURCES.items():
                if f'_{tag}_' in osp.basename(out):
                    # The position table written beside the weights.
                    frames = backbone.get('num_frames', 16)
                    size = backbone.get('img_size', 224)
                    options = [f'--num-frames {frames}'] * (frames != 16)
                    options += [f'--img-size {size}'] * (size != 224)
                    return ' '.join([
                        'python tools/convert_weights.py', source, out,
                        f'--src-format {src_format} --dst', self.dst
                    ] + options)
        source = self.sources.get(
            backbone.get('embed_dims', 768), 'imagenet_vit.pth')
        return ' '.join([
            'python tools/convert_weights.py', source, out,
            '--src-format timm --dst', self.dst
        ] + self.options(backbone))


def _videomae_options(backbone: dict) -> List[str]:
    """The VideoMAE ViT's clip length, tubelets and position embedding."""
    flags = [
        f'--num-frames {backbone.get("num_frames", 16)}',
        f'--tubelet-size {backbone.get("tubelet_size", 2)}'
    ]
    if not backbone.get('use_learnable_pos_emb', False):
        flags.append('--videomae-pos-embed sincos')
    return flags


@dataclass(frozen=True)
class Family:
    """One backbone family.

    Args:
        name (str): Short key (test ids, ``family()``).
        title (str): Name in reports.
        backbone (type): The merging backbone class; its class name is its
            registry name.
        tiny_args (callable): ``(dims, frames, size) -> dict``, the
            backbone's arguments (without ``type``) for a tiny model of
            ``TINY_DEPTH`` blocks of width ``dims``, on clips of ``frames``
            frames of ``size`` x ``size`` pixels, patches of ``TINY_PATCH``.
        replaces (str, optional): The MMAction2 backbone that ``backbone``
            subclasses with the same arguments and parameter names, so a
            config of it can run as ``backbone``.
        converter (Converter, optional): How ``tools/convert_weights.py``
            writes this family's weights from an ImageNet ViT; None for the
            families that load their library's own checkpoints.
    """

    name: str
    title: str
    backbone: Type[MergingBackbone]
    tiny_args: Callable[[int, int, int], dict]
    replaces: Optional[str] = None
    converter: Optional[Converter] = None

    @property
    def type(self) -> str:
        """Registry name of :attr:`backbone`."""
        return self.backbone.__name__

    def tiny(self, dims: int = 32, frames: int = 4, size: int = 32) -> dict:
        """Config of a tiny backbone of this family.

        Args:
            dims (int): Width; a multiple of ``TINY_HEADS``. Defaults to 32.
            frames (int): Frames per clip (even: the VideoMAE ViT has
                tubelets of 2). Defaults to 4.
            size (int): Frame height and width; a multiple of
                ``TINY_PATCH``. Defaults to 32.

        Returns:
            dict: ``type`` and the arguments, without a merger.
        """
        return dict(type=self.type, **self.tiny_args(dims, frames, size))


FAMILIES: Tuple[Family, ...] = (
    Family(
        'vit',
        'spacetime ViT',
        SpaceTimeViT,
        lambda dims, frames, size: dict(
            img_size=size,
            patch_size=TINY_PATCH,
            num_frames=frames,
            embed_dims=dims,
            depth=TINY_DEPTH,
            num_heads=TINY_HEADS),
        converter=Converter('spacetime-vit')),
    Family(
        'timesformer',
        'TimeSformer',
        MergingTimeSformer,
        lambda dims, frames, size: dict(
            num_frames=frames,
            img_size=size,
            patch_size=TINY_PATCH,
            embed_dims=dims,
            num_heads=TINY_HEADS,
            num_transformer_layers=TINY_DEPTH),
        replaces='TimeSformer',
        converter=Converter('timesformer')),
    Family(
        'videomae',
        'VideoMAE ViT',
        MergingVisionTransformer,
        lambda dims, frames, size: dict(
            img_size=size,
            patch_size=TINY_PATCH,
            embed_dims=dims,
            depth=TINY_DEPTH,
            num_heads=TINY_HEADS,
            num_frames=frames,
            tubelet_size=2),
        replaces='VisionTransformer',
        converter=Converter('videomae-vit', _videomae_options)),
    Family(
        'mmpretrain', 'mmpretrain ViT', MergingMMPretrainViT,
        lambda dims, frames, size: dict(
            vit=dict(
                type='mmpretrain.VisionTransformer',
                arch=dict(
                    embed_dims=dims,
                    num_layers=TINY_DEPTH,
                    num_heads=TINY_HEADS,
                    feedforward_channels=2 * dims),
                img_size=size,
                patch_size=TINY_PATCH),
            num_frames=frames)),
    Family(
        'timm', 'timm ViT', MergingTimmViT, lambda dims, frames, size: dict(
            model_name='vit_tiny_patch16_224',
            model_kwargs=dict(
                img_size=size,
                patch_size=TINY_PATCH,
                embed_dim=dims,
                depth=TINY_DEPTH,
                num_heads=TINY_HEADS),
            num_frames=frames)),
)


def family(name: str) -> Family:
    """The family called ``name``.

    Args:
        name (str): A :attr:`Family.name`.

    Returns:
        Family: Its entry in :data:`FAMILIES`.

    Raises:
        KeyError: Naming the known families.
    """
    by_name: Dict[str, Family] = {f.name: f for f in FAMILIES}
    if name not in by_name:
        raise KeyError(f'no backbone family {name!r}; the families are '
                       f'{sorted(by_name)}')
    return by_name[name]


#: The backbone config keys that only a merging backbone takes.
MERGING_KEYS = ('merger', 'reducer')


def check_merging_backbone(backbone: Optional[dict],
                           field: str = 'model.backbone') -> None:
    """Refuse a ``merger`` or ``reducer`` on a backbone that cannot merge.

    MMAction2's ``VisionTransformer`` takes unknown keyword arguments and
    ignores them, so without this check such a config would silently run
    the unmerged model (and its ``TimeSformer`` fails with "unexpected
    keyword argument" without naming the class to use).

    Args:
        backbone (dict, optional): A backbone config.
        field (str): Its place in the config, for the message. Defaults to
            ``'model.backbone'``.

    Raises:
        ValueError: One line naming the field, the backbone and the merging
            class to use (or every merging class, when it has no twin).
    """
    if not isinstance(backbone, dict):
        return
    keys = [k for k in MERGING_KEYS if backbone.get(k) is not None]
    kind = backbone.get('type', '')
    name = getattr(kind, '__name__', str(kind))
    scope, _, name = name.rpartition('.')
    if not keys or name in {f.type for f in FAMILIES}:
        return
    twins = {f.replaces: f.type for f in FAMILIES if f.replaces}
    if scope in ('', 'mmaction') and name in twins:
        hint = f"use type='{twins[name]}'"
    elif isinstance(kind, str) and MODELS.get(kind) is None:
        return  # not registered: the builder's error names the typo
    else:
        hint = 'the merging backbones are ' + ', '.join(
            sorted(f.type for f in FAMILIES))
    raise ValueError(f'{field}.{keys[0]}: {name} cannot merge; {hint}')
