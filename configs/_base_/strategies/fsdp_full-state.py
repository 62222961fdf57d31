# Sharded training (FSDP) through MMEngine's FlexibleRunner, which
# tools/train.py and tools/test.py build for a config with `runner_type`
# (as MMAction2's tools do). Add it to a config's _base_ list:
#
#   _base_ = ['../_base_/strategies/fsdp_full-state.py', ...]
#
# - The whole recognizer is one FSDP unit: parameters, gradients and
#   optimizer states are sharded across ranks between steps, and gathered
#   for each forward and backward. Per-block wrapping needs every family's
#   blocks to run through their own forward, which they do not yet (they
#   call the blocks' parts to hand queries and keys to the mergers).
# - For activation checkpointing set the backbone's `with_cp=True` (the
#   strategy's `activation_checkpointing` wraps modules whose internals the
#   backbones call directly, so it would not apply).
# - `state_dict_cfg='full'`: every checkpoint is one file on rank 0 that
#   tools/test.py and the converters read as they read a DDP checkpoint.
# - On CPU (gloo), mmaction_sttm.compat gives FSDP the CPU device
#   (CPUFullyShardedDataParallel); on GPU MMEngine's own wrapper runs.
runner_type = 'FlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(type='MMFullyShardedDataParallel', use_orig_params=True),
    # Full state dicts on rank 0, gathered without an offload copy (the
    # offloading copy crashes torch 2.9's FSDP on CPU modules).
    state_dict_cfg=dict(
        state_dict_type='FULL_STATE_DICT',
        state_dict_config=dict(
            type='FullStateDictConfig', offload_to_cpu=False,
            rank0_only=True),
        optim_state_dict_config=dict(
            type='FullOptimStateDictConfig', offload_to_cpu=False,
            rank0_only=True)))
