from .synthetic import MOTIONS, SyntheticSpec, make_synthetic_dataset

__all__ = ['MOTIONS', 'SyntheticSpec', 'make_synthetic_dataset']
