"""Generators of data files (not datasets): the synthetic motion videos that
the demo, the ablation study and the tests train and test on."""
from .synthetic_motion import (BACKGROUNDS, MOTIONS, SHAPE_CLASSES,
                               SyntheticSpec, make_synthetic_dataset,
                               render_video)

__all__ = [
    'BACKGROUNDS', 'MOTIONS', 'SHAPE_CLASSES', 'SyntheticSpec',
    'make_synthetic_dataset', 'render_video'
]
