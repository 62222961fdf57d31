from .backbones import *  # noqa: F401,F403
from .merge_schedule import MergeSchedule, build_merge_schedule
from .mergers import *  # noqa: F401,F403

__all__ = ['MergeSchedule', 'build_merge_schedule']
