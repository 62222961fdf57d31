from .image_vit import MMPretrainViTSTTM, TimmViTSTTM
from .spacetime_vit import SpaceTimeViT
from .timesformer_sttm import TimeSformerSTTM
from .vit_mae_sttm import VisionTransformerSTTM

__all__ = [
    'SpaceTimeViT', 'TimeSformerSTTM', 'VisionTransformerSTTM',
    'MMPretrainViTSTTM', 'TimmViTSTTM'
]
