"""Registries: the project registers into MMAction2's, so configs that load
it with ``custom_imports`` build its modules by ``type`` name."""
from mmaction.registry import DATASETS, METRICS, MODELS, TRANSFORMS

__all__ = ['DATASETS', 'METRICS', 'MODELS', 'TRANSFORMS']
