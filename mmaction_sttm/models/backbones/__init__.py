from . import deprecated  # noqa: F401,E402  (registers the old names)
from .base import Geometry, MergingBackbone, MergingTwin, Trace
from .mmpretrain_vit import MergingMMPretrainViT
from .spacetime_vit import SpaceTimeViT
from .timesformer import MergingTimeSformer
from .timm_vit import MergingTimmViT
from .videomae_vit import MergingVisionTransformer

__all__ = [
    'Geometry', 'MergingBackbone', 'MergingTwin', 'Trace', 'SpaceTimeViT',
    'MergingTimeSformer', 'MergingVisionTransformer', 'MergingMMPretrainViT',
    'MergingTimmViT'
]
