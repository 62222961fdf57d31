# Base of tools/analysis_tools/study.py, trained from scratch (regime (d)):
# MMAction2's ViT (VideoMAE layout: 2-frame tubelets, no CLS token) with the
# project's merging, small enough that the study trains on 2 CPU cores:
# 32x32 frames, 8x8x2 tubelets (4 x 16 tokens), 4 blocks, 96 channels. From
# scratch on little data, tubelets learn the motion classes within a few
# epochs where per-frame 2D patches (the paper's ViT, TimeSformer) stay near
# chance: a tubelet sees the motion inside one token. Merges after blocks
# (2, 3) are the paper's (6, 9) scaled from 12 blocks to 4.
_base_ = [
    '../../_base_/default_runtime.py',
    '../../_base_/datasets/synthetic_motion.py',
    '../../_base_/schedules/adamw_20e.py'
]

crop_size = 32
data_root = 'data/study/motion'
num_classes = 10

model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='MergingVisionTransformer',
        img_size=crop_size,
        patch_size=8,
        num_frames=8,
        tubelet_size=2,
        embed_dims=96,
        depth=4,
        num_heads=4),
    cls_head=dict(
        type='TimeSformerHead',
        num_classes=num_classes,
        in_channels=96,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))

sample = dict(type='SampleFrames', clip_len=8, frame_interval=2, num_clips=1)
# The base's decoder fallback (decord, then PyAV, then OpenCV, 60 s each per
# video), which replaces MMAction2's DecordInit / SampleFrames / DecordDecode.
decode = dict(
    type='DecodeWithFallback',
    decoders=['decord', 'pyav', 'opencv'],
    timeout=60)
train_pipeline = [
    dict(decode, sampler=sample),
    # Frames are square: no crop in training (positions are random anyway),
    # three identical crops at test time (ThreeCrop crops the long side).
    dict(type='Resize', scale=(-1, crop_size)),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(decode, sampler=dict(sample, test_mode=True)),
    dict(type='Resize', scale=(-1, crop_size)),
    dict(type='CenterCrop', crop_size=crop_size),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(decode, sampler=dict(sample, test_mode=True)),
    dict(type='Resize', scale=(-1, crop_size)),
    dict(type='ThreeCrop', crop_size=crop_size),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]

train_dataloader = dict(
    batch_size=32,
    dataset=dict(
        ann_file=f'{data_root}/train_list_videos.txt',
        data_prefix=dict(video=f'{data_root}/videos'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    dataset=dict(
        ann_file=f'{data_root}/val_list_videos.txt',
        data_prefix=dict(video=f'{data_root}/videos'),
        pipeline=val_pipeline))
test_dataloader = dict(
    batch_size=8,
    dataset=dict(
        ann_file=f'{data_root}/val_list_videos.txt',
        data_prefix=dict(video=f'{data_root}/videos'),
        pipeline=test_pipeline))

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True,
         begin=1, end=max_epochs, convert_to_iter_based=True)
]
# Keep only the last checkpoint: the study tests it.
default_hooks = dict(
    checkpoint=dict(interval=max_epochs, save_best=None, max_keep_ckpts=1),
    logger=dict(interval=10))
auto_scale_lr = dict(enable=False, base_batch_size=32)
