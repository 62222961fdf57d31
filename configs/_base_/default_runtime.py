# MMAction2's default runtime, with the project's modules loaded.
default_scope = 'mmaction'

# Registers the project's models, datasets, hooks and file backend in every
# process that builds this config (torchrun children included). The import
# switches nothing on: the hooks below do, in the runs that name them.
custom_imports = dict(imports=['mmaction_sttm'], allow_failed_imports=False)

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, ignore_last=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # MMEngine's CheckpointHook, with writes a kill cannot corrupt
    # (mmaction_sttm/engine/safe_checkpoint.py).
    checkpoint=dict(type='SafeCheckpointHook', interval=1, save_best='auto'),
    # load_from, resume and Pretrained inits load with weights_only=True and
    # an allow-list of what MMEngine checkpoints hold; a file that would run
    # code is refused (mmaction_sttm/engine/checkpoint_loading.py). In
    # default_hooks, so that a config replacing custom_hooks keeps it.
    checkpoint_loading=dict(type='SafeCheckpointLoadingHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    sync_buffers=dict(type='SyncBuffersHook'))

# BadSampleHook reports the bad videos RobustVideoDataset replaced, per
# epoch. EpochSeedHook reseeds every generator from (seed, epoch) at the start
# of each epoch, so that `--resume` continues exactly as the uninterrupted run
# would have (mmaction_sttm/engine/epoch_seed_hook.py).
custom_hooks = [dict(type='BadSampleHook'), dict(type='EpochSeedHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # nccl on GPU; on CPU tools/train.py and tools/test.py switch to gloo
    # (mmaction_sttm.compat.setup_distributed), no edit needed.
    dist_cfg=dict(backend='nccl'))

log_processor = dict(type='LogProcessor', window_size=20, by_epoch=True)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='ActionVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
