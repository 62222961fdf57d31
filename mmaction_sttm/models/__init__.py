from .backbones import *  # noqa: F401,F403
from .mergers import *  # noqa: F401,F403
from .sttm import STTM, MergeSchedule, build_merge_schedule

__all__ = ['STTM', 'MergeSchedule', 'build_merge_schedule']
