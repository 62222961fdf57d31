"""Registry names of earlier releases, kept so that configs already written
keep building.

The merging backbones were named for STTM (``TimeSformerSTTM``, ...) though
they run any merger; they are named for the model now
(``MergingTimeSformer``, ...). Each old name is registered as a subclass of
the new class that warns once per build (``FutureWarning``, which Python
shows by default) and does nothing else. The names will be removed in a
later minor release.
"""
import warnings
from typing import Dict, Type

from mmaction_sttm.registry import MODELS
from .base import MergingBackbone
from .mmpretrain_vit import MergingMMPretrainViT
from .timesformer import MergingTimeSformer
from .timm_vit import MergingTimmViT
from .videomae_vit import MergingVisionTransformer

#: Old registry name -> the backbone class that replaces it.
RENAMED: Dict[str, Type[MergingBackbone]] = {
    'TimeSformerSTTM': MergingTimeSformer,
    'VisionTransformerSTTM': MergingVisionTransformer,
    'TimmViTSTTM': MergingTimmViT,
    'MMPretrainViTSTTM': MergingMMPretrainViT,
}


def _alias(old: str, new: Type[MergingBackbone]) -> type:
    """A subclass of ``new`` called ``old`` whose ``__init__`` warns."""

    def __init__(self, *args, **kwargs) -> None:
        warnings.warn(
            f"backbone type '{old}' is deprecated and will be removed; use "
            f"'{new.__name__}' (same arguments, same checkpoints)",
            FutureWarning,
            stacklevel=2)
        new.__init__(self, *args, **kwargs)

    return type(
        old, (new, ), {
            '__init__': __init__,
            '__doc__': f'Deprecated name of :class:`{new.__name__}`.',
            '__module__': __name__,
            'deprecated_alias_of': new,
        })


for _old, _new in RENAMED.items():
    MODELS.register_module(name=_old, module=_alias(_old, _new))
