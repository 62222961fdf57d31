from .bad_sample_hook import BadSampleHook
from .robust import BadVideoError, RobustVideoDataset
from .video_probe import VideoProblem, probe_video

__all__ = [
    'BadSampleHook', 'BadVideoError', 'RobustVideoDataset', 'VideoProblem',
    'probe_video'
]
