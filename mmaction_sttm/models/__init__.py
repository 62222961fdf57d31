from .apply import apply_merger
from .backbones import *  # noqa: F401,F403
from .catalog import FAMILIES, Family
from .merge_schedule import MergeSchedule, build_merge_schedule
from .mergers import *  # noqa: F401,F403
from .reducers import RLT, build_reducer

__all__ = [
    'FAMILIES', 'Family', 'MergeSchedule', 'apply_merger',
    'build_merge_schedule', 'RLT', 'build_reducer'
]
