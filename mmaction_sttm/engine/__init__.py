"""Training-loop hooks and checkpoint handling of the project."""
from . import checkpoint_loading
from .checkpoint_loading import UnsafeCheckpointError
from .epoch_seed_hook import EpochSeedHook, epoch_seed
from .optim_constructor import FusedFallbackOptimWrapperConstructor
from .safe_checkpoint import AtomicLocalBackend, SafeCheckpointHook

checkpoint_loading.register()

__all__ = [
    'EpochSeedHook', 'epoch_seed', 'SafeCheckpointHook',
    'AtomicLocalBackend', 'UnsafeCheckpointError',
    'FusedFallbackOptimWrapperConstructor'
]
