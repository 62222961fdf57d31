"""Mergers other than STTM, for comparisons under one merge schedule.

Every merger follows the interface of
:class:`~mmaction_sttm.models.sttm.MergeSchedule` and is chosen by its
registry name in the backbone's ``merger`` config.
"""
from .base import HardMerger
from .evit import EViT
from .random_drop import RandomDrop
from .tome import ToMe
from .uniform_pool import UniformPool

__all__ = ['HardMerger', 'EViT', 'RandomDrop', 'ToMe', 'UniformPool']
