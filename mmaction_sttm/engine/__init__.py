"""Training-loop hooks and checkpoint handling of the project.

Importing registers the hooks, the ``'atomic_local'`` file backend and
the FSDP wrap policy (:mod:`.fsdp`); what
they do happens only in a run whose config names them.
"""
from .checkpoint_loading import (NotACheckpointError,
                                 SafeCheckpointLoadingHook,
                                 UnsafeCheckpointError,
                                 safe_checkpoint_loading)
from .epoch_seed_hook import EpochSeedHook, epoch_seed
from .fsdp import (ResumableFlexibleRunner, ResumableFSDPStrategy,
                   checkpointed_merging_block, consolidate_sharded_checkpoint,
                   merging_block_wrap_policy)
from .optim_constructor import FusedFallbackOptimWrapperConstructor
from .safe_checkpoint import AtomicLocalBackend, SafeCheckpointHook

__all__ = [
    'EpochSeedHook', 'epoch_seed', 'SafeCheckpointHook',
    'SafeCheckpointLoadingHook', 'AtomicLocalBackend', 'NotACheckpointError',
    'UnsafeCheckpointError', 'safe_checkpoint_loading',
    'FusedFallbackOptimWrapperConstructor', 'merging_block_wrap_policy',
    'checkpointed_merging_block', 'ResumableFSDPStrategy',
    'ResumableFlexibleRunner', 'consolidate_sharded_checkpoint'
]
