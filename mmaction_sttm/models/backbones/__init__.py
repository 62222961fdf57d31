from .base import Geometry, MergingBackbone, MergingTwin, Trace
from .mmpretrain_vit import MMPretrainViTSTTM
from .spacetime_vit import SpaceTimeViT
from .timesformer_sttm import TimeSformerSTTM
from .timm_vit import TimmViTSTTM
from .vit_mae_sttm import VisionTransformerSTTM

__all__ = [
    'Geometry', 'MergingBackbone', 'MergingTwin', 'Trace', 'SpaceTimeViT',
    'TimeSformerSTTM', 'VisionTransformerSTTM', 'MMPretrainViTSTTM',
    'TimmViTSTTM'
]
