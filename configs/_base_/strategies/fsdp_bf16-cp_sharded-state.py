# The sharded-training strategy for the large zoo configs: FSDP with one
# unit per transformer block (configs/_base_/strategies/fsdp_full-state.py),
# plus
# - bf16 mixed precision of the blocks: each block's parameters are
#   gathered and its computation runs in bfloat16, its gradients are reduced
#   in float32, and the sharded master weights and optimizer states stay
#   float32; what runs between blocks (embedding, merges, head) is float32;
# - activation checkpointing of every transformer block (the merges between
#   blocks run once, outside the recomputed regions);
# - sharded state dicts: each checkpoint is a folder of rank{i}.pth files,
#   one per rank, written and read in parallel; resume from the folder, and
#   make the one file that tools/test.py and the converters read with
#       python tools/consolidate_checkpoint.py SRC_FOLDER DST_FILE
#
#   _base_ = ['../_base_/strategies/fsdp_bf16-cp_sharded-state.py', ...]
_base_ = ['./fsdp_full-state.py']

strategy = dict(
    model_wrapper=dict(
        auto_wrap_policy=dict(
            _delete_=True,
            type='merging_block_wrap_policy',
            # the block units only: embedding, merges, head and loss stay
            # float32 (MMAction2's heads score in numpy, without bfloat16)
            mixed_precision=dict(
                param_dtype='bfloat16',
                reduce_dtype='float32',
                buffer_dtype='float32',
                cast_forward_inputs=True))),
    activation_checkpointing=dict(check_fn='checkpointed_merging_block'),
    state_dict_cfg=dict(
        _delete_=True,
        state_dict_type='SHARDED_STATE_DICT',
        state_dict_config=dict(type='ShardedStateDictConfig'),
        optim_state_dict_config=dict(type='ShardedOptimStateDictConfig')))
