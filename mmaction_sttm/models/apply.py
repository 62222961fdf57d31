"""A merger for a model built in code: :func:`apply_merger`.

The config path (``model.backbone.type='MergingTimeSformer'`` and a
``merger``, then ``load_from`` a checkpoint of the unmerged model) is one
way to add a merger to a trained model. :func:`apply_merger` is the other,
for users who build their models in Python, as ToMe's ``apply_patch`` does
for timm: it turns a built recognizer, or its backbone, into the merging
twin with the same weights. Both paths give the same module (the tests
compare their outputs).

Example::

    >>> from mmaction.registry import MODELS
    >>> from mmaction_sttm import apply_merger
    >>> model = MODELS.build(cfg.model)          # e.g. a TimeSformer
    >>> model.load_state_dict(trained_weights)
    >>> merged = apply_merger(
    ...     model, dict(type='STTM', layers=(6, 9), ratio=0.5))
    >>> reduced = apply_merger(model, None, reducer=dict(type='RLT'))
"""
import contextlib
import copy
import logging
from typing import Iterator, Optional, TypeVar

from mmengine.logging import MMLogger
from torch import nn

from .backbones import MergingBackbone, MergingTimmViT
from .catalog import FAMILIES
from .mergers.base import Merger

__all__ = ['apply_merger']

ModuleT = TypeVar('ModuleT', bound=nn.Module)


def _is_timm_vit(model: nn.Module) -> bool:
    """A timm ``VisionTransformer`` instance (timm imported only if the
    model's class comes from it)."""
    if not type(model).__module__.startswith('timm.'):
        return False
    from timm.models.vision_transformer import VisionTransformer
    return isinstance(model, VisionTransformer)


@contextlib.contextmanager
def _quiet_init() -> Iterator[None]:
    """MMEngine's ``init_weights`` logs one INFO entry per parameter of a
    top-level module; here the merger's init is the documented one."""
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _twin_class(backbone: nn.Module) -> type:
    """The merging family that ``backbone`` is, or that stands in for its
    MMAction2 class with the same arguments and parameter names."""
    if isinstance(backbone, MergingBackbone):
        return type(backbone)
    for family in FAMILIES:
        if type(backbone).__name__ == family.replaces and issubclass(
                family.backbone, type(backbone)):
            return family.backbone
    known = sorted({f.replaces
                    for f in FAMILIES if f.replaces}
                   | {f.type
                      for f in FAMILIES})
    raise TypeError(f'apply_merger: {type(backbone).__name__} has no '
                    f'merging twin; apply_merger takes a model of one of '
                    f'{known}, a timm VisionTransformer instance, or a '
                    f'recognizer whose backbone is one')


def apply_merger(model: ModuleT,
                 merger: Optional[dict],
                 prop_attn: bool = False,
                 inplace: bool = False,
                 reducer: Optional[dict] = None,
                 num_frames: int = 8,
                 batching: Optional[str] = None) -> ModuleT:
    """Turn a built recognizer or backbone into its merging twin.

    MMAction2's ``TimeSformer`` and ``VisionTransformer`` become
    ``MergingTimeSformer`` and ``MergingVisionTransformer``, subclasses with
    the
    same arguments and parameter names; a backbone of this package built
    without a merger gets one; a timm ``VisionTransformer`` instance (an
    image model, as ToMe's ``apply_patch`` takes) becomes a
    :class:`~mmaction_sttm.models.backbones.MergingTimmViT` video backbone
    around it (clips ``(B, C, T, H, W)``; its classifier head dropped).
    Every weight is kept. The merger's own
    parameters (STTM's projections) start as the config path initialises
    them, so a trained model runs off the shelf.

    Args:
        model (nn.Module): A recognizer (anything with a ``backbone``) or a
            backbone, without a merger.
        merger (dict, optional): The backbone's ``merger`` config, as in a
            config file (``type``, ``layers``, ``ratio``, ...); None gives
            the unmerged twin.
        prop_attn (bool): Proportional attention after merges. Defaults to
            False.
        inplace (bool): Change ``model`` itself instead of a copy. Defaults
            to False.
        reducer (dict, optional): The backbone's ``reducer`` config (e.g.
            ``dict(type='RLT', threshold=0.1)``), a content-adaptive reducer
            before the first block; its length embedding starts at zero, so
            that a model whose reducer drops nothing is unchanged. Defaults
            to None.
        num_frames (int): For a timm ``VisionTransformer``: the clip
            length of its temporal embedding (zeros, so the image model is
            unchanged on every frame). Defaults to 8.
        batching (str, optional): The backbone's ``batching`` with
            ``reducer``: ``'padded'`` or ``'packed'``; None keeps the
            backbone's (``'padded'`` unless set). Defaults to None.

    Returns:
        nn.Module: The model (a copy unless ``inplace``) with its backbone
        merging; same class as ``model`` when ``model`` is a recognizer.

    Raises:
        TypeError: The backbone has no merging twin, or ``merger`` has a
            key its merger does not take.
        ValueError: The backbone merges already, or cannot run ``merger``
            (the same messages as the config path; with ``inplace`` the
            model is then left as the unmerged twin, which computes what it
            computed before).
    """
    if _is_timm_vit(model):
        if not inplace:
            model = copy.deepcopy(model)
        backbone = MergingTimmViT.from_model(
            model,
            num_frames=num_frames,
            merger=merger,
            prop_attn=prop_attn,
            reducer=reducer,
            **({} if batching is None else dict(batching=batching)))
        _init_added(backbone)
        return backbone
    backbone = getattr(model, 'backbone', model)
    twin = _twin_class(backbone)
    if getattr(backbone, 'merge_schedule', None) is not None:
        raise ValueError(f'apply_merger: {type(backbone).__name__} has a '
                         'merger already; apply one to the unmerged model')
    if not inplace:
        model = copy.deepcopy(model)
        backbone = getattr(model, 'backbone', model)
    if type(backbone) is not twin:
        backbone.__class__ = twin
        backbone._init_family()
        backbone.merge_schedule = None
    backbone.set_reducer(reducer, batching)
    try:
        backbone.set_merger(merger, prop_attn)
    except (TypeError, ValueError):
        backbone.reducer = None
        raise
    _init_added(backbone)
    return model


def _init_added(backbone: nn.Module) -> None:
    """Initialise what was added to a built backbone (its reducer and merge
    schedule, and an image ViT's temporal embedding) as the config path
    does, on the backbone's device and dtype, quietly."""
    reference = next(backbone.parameters())
    time_embed = getattr(backbone, 'time_embed', None)
    if isinstance(time_embed, nn.Parameter):
        time_embed.data = time_embed.data.to(reference)
    for module in (backbone.reducer, backbone.merge_schedule):
        if module is not None:
            # Same device and dtype as the weights it joins.
            module.to(device=reference.device, dtype=reference.dtype)
            module.train(backbone.training)
            with _quiet_init():
                module.init_weights()  # the config path's init_cfg, if any
    if backbone.merge_schedule is not None:
        # Inserted into a built (usually trained) model: a merger whose
        # init is not neutral says so the first time it runs untrained.
        for merger in backbone.merge_schedule.modules():
            if isinstance(merger, Merger):
                merger.untrained = True
