"""The mergers: STTM and its peers, one contract
(:class:`~mmaction_sttm.models.mergers.base.Merger`), chosen by registry
name in the backbone's ``merger`` config."""
from .base import NEEDS, Cues, HardMerger, Merger, PairMerger
from .evit import EViT
from .pitome import PiToMe
from .random_drop import RandomDrop
from .sttm import STTM
from .tome import ToMe
from .uniform_pool import UniformPool
from .vid_tldr import VidTLDR

__all__ = [
    'NEEDS', 'Cues', 'Merger', 'HardMerger', 'PairMerger', 'STTM', 'EViT',
    'PiToMe', 'RandomDrop', 'ToMe', 'UniformPool', 'VidTLDR'
]
