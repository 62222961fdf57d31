# Sharded training (FSDP) through MMEngine's FlexibleRunner, which
# tools/train.py and tools/test.py build for a config with `runner_type`
# (as MMAction2's tools do). Add it to a config's _base_ list:
#
#   _base_ = ['../_base_/strategies/fsdp_full-state.py', ...]
#
# - One FSDP unit per transformer block (`merging_block_wrap_policy`):
#   parameters, gradients and optimizer states are sharded across ranks,
#   and a block's parameters are gathered only while that block runs
#   forward or backward. The embedding, the mergers, the final norm and
#   the head are the root unit.
# - Activation checkpointing: the backbone's `with_cp=True`, or the
#   strategy's `activation_checkpointing=dict(check_fn='checkpointed_merging_block')`
#   (configs/_base_/strategies/fsdp_bf16-cp_sharded-state.py); either way
#   the merges between blocks run once, outside the recomputed regions.
# - `state_dict_cfg='full'`: every checkpoint is one file on rank 0 that
#   tools/test.py and the converters read as they read a DDP checkpoint.
# - On CPU (gloo), mmaction_sttm.compat gives FSDP the CPU device
#   (CPUFullyShardedDataParallel); on GPU MMEngine's own wrapper runs.
runner_type = 'ResumableFlexibleRunner'
strategy = dict(
    type='ResumableFSDPStrategy',
    model_wrapper=dict(
        type='MMFullyShardedDataParallel',
        use_orig_params=True,
        auto_wrap_policy='merging_block_wrap_policy'),
    # Full state dicts on rank 0, gathered without an offload copy (the
    # offloading copy crashes torch 2.9's FSDP on CPU modules).
    state_dict_cfg=dict(
        state_dict_type='FULL_STATE_DICT',
        state_dict_config=dict(
            type='FullStateDictConfig', offload_to_cpu=False, rank0_only=True),
        optim_state_dict_config=dict(
            type='FullOptimStateDictConfig',
            offload_to_cpu=False,
            rank0_only=True)))
