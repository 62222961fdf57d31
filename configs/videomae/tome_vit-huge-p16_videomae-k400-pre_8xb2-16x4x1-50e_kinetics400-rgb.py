# VideoMAE ViT-H/16, ToMe at -33% GFLOPs, on Kinetics-400, 16 frames one every
# 4th.
# The schedule and why: ../_base_/models/videomae-vit-huge-p16_tome.py.
_base_ = [
    '../_base_/models/videomae-vit-huge-p16_tome.py',
    '../_base_/datasets/kinetics400_16x4x1.py',
    '../_base_/schedules/adamw_layer-decay_cosine_50e.py',
    '../_base_/default_runtime.py'
]

# VideoMAE's ViT-H rate, 1e-3 per 256 videos, for 16 videos per step.
optim_wrapper = dict(
    optimizer=dict(lr=6.25e-5), paramwise_cfg=dict(num_layers=32))
