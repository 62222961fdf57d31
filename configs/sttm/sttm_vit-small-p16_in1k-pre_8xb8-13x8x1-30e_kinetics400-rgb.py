# ViT-S/16 + STTM on Kinetics-400 with 13 frames, which costs about the
# GFLOPs of the 8-frame baseline (paper Table 6, same-computation rows).
_base_ = [
    '../_base_/models/vit-small-p16_sttm.py',
    '../_base_/datasets/kinetics400_13x8x1.py',
    '../_base_/schedules/adamw_linear_30e.py',
    '../_base_/default_runtime.py'
]

model = dict(backbone=dict(num_frames=13))
