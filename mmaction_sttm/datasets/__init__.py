from .bad_sample_hook import BadSampleHook
from .robust import BadVideoError, RobustVideoDataset
from .synthetic import MOTIONS, SyntheticSpec, make_synthetic_dataset
from .video_probe import VideoProblem, probe_video

__all__ = [
    'MOTIONS', 'SyntheticSpec', 'make_synthetic_dataset', 'BadSampleHook',
    'BadVideoError', 'RobustVideoDataset', 'VideoProblem', 'probe_video'
]
