# VideoMAE ViT-L/16, STTM at -33% GFLOPs, on Kinetics-400, 16 frames one every
# 4th.
# The schedule and why: ../_base_/models/videomae-vit-large-p16_sttm.py.
_base_ = [
    '../_base_/models/videomae-vit-large-p16_sttm.py',
    '../_base_/datasets/kinetics400_16x4x1.py',
    '../_base_/schedules/adamw_layer-decay_cosine_35e.py',
    '../_base_/default_runtime.py'
]
