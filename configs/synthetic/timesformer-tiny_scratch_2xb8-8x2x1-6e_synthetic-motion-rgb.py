# A tiny divided space-time TimeSformer (MMAction2's) trained from scratch on
# the synthetic motion dataset: the baseline for STTM on TimeSformer.
# 32x32 input, 8x8 patches: 8 frames x 16 patches + CLS = 129 tokens.
# Divided attention sees motion only by comparing patches across frames (no
# tubelets), so it learns the task more slowly than the ViT: twice the
# epochs, and a lower top-1 all the same (see docs/results/study).
_base_ = [
    '../_base_/default_runtime.py', '../_base_/datasets/synthetic_motion.py',
    '../_base_/schedules/adamw_3e.py'
]

embed_dims = 64

model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='TimeSformer',
        num_frames=8,
        img_size={{_base_.crop_size}},
        patch_size=8,
        embed_dims=embed_dims,
        num_heads=2,
        num_transformer_layers=4,
        in_channels=3,
        dropout_ratio=0.,
        attention_type='divided_space_time',
        norm_cfg=dict(type='LN', eps=1e-6)),
    cls_head=dict(
        type='TimeSformerHead',
        num_classes={{_base_.num_classes}},
        in_channels=embed_dims,
        average_clips='prob'),
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[127.5, 127.5, 127.5],
        std=[127.5, 127.5, 127.5],
        format_shape='NCTHW'))

# adamw_3e.py's schedule over 6 epochs: warm-up over the first 100
# iterations, linear decay to zero over the whole run.
max_epochs = 6
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(
        type='LinearLR',
        start_factor=1.0,
        end_factor=0.0,
        by_epoch=True,
        begin=0,
        end=max_epochs,
        convert_to_iter_based=True)
]
