# A tiny joint space-time ViT (MMAction2's VideoMAE VisionTransformer) trained
# from scratch on the synthetic motion dataset: the baseline for STTM on ViT.
# 32x32 input, 8x8 patches, tubelets of 2 frames: 4 x 16 = 64 tokens.
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/synthetic_motion.py',
    '../_base_/schedules/adamw_3e.py'
]

embed_dims = 64

model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='VisionTransformer',
        img_size={{_base_.crop_size}},
        patch_size=8,
        embed_dims=embed_dims,
        depth=4,
        num_heads=2,
        mlp_ratio=4,
        qkv_bias=True,
        num_frames=8,
        tubelet_size=2,
        norm_cfg=dict(type='LN', eps=1e-6)),
    cls_head=dict(
        type='TimeSformerHead',
        num_classes={{_base_.num_classes}},
        in_channels=embed_dims,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))
