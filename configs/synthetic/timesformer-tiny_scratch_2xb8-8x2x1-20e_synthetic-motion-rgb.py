# A tiny divided space-time TimeSformer (MMAction2's) trained from scratch on
# the synthetic motion dataset: the baseline for STTM on TimeSformer.
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/synthetic_motion.py',
    '../_base_/schedules/adamw_20e.py'
]

model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='TimeSformer',
        num_frames=8,
        img_size={{_base_.crop_size}},
        patch_size=8,
        embed_dims=128,
        num_heads=4,
        num_transformer_layers=4,
        in_channels=3,
        dropout_ratio=0.,
        attention_type='divided_space_time',
        norm_cfg=dict(type='LN', eps=1e-6)),
    cls_head=dict(
        type='TimeSformerHead',
        num_classes={{_base_.num_classes}},
        in_channels=128,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        format_shape='NCTHW'))
