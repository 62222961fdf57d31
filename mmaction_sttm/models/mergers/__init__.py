"""The mergers: STTM and its peers, one contract
(:class:`~mmaction_sttm.models.mergers.base.Merger`), chosen by registry
name in the backbone's ``merger`` config."""
from .base import NEEDS, HardMerger, Merger
from .evit import EViT
from .random_drop import RandomDrop
from .sttm import STTM
from .tome import ToMe
from .uniform_pool import UniformPool

__all__ = [
    'NEEDS', 'Merger', 'HardMerger', 'STTM', 'EViT', 'RandomDrop', 'ToMe',
    'UniformPool'
]
