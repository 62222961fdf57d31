from .bad_sample_hook import BadSampleHook
from .robust import BadVideoError, RobustVideoDataset
from .shared_counter import SharedCounter
from .transforms import DecodeWithFallback, pipeline_steps
from .video_probe import VideoProblem, probe_video

__all__ = [
    'BadSampleHook', 'BadVideoError', 'DecodeWithFallback',
    'RobustVideoDataset', 'SharedCounter', 'VideoProblem', 'pipeline_steps',
    'probe_video'
]
