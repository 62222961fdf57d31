# TimeSformer-B/16 (divided space-time) + STTM on Something-Something V2 with
# 11 frames, which costs about the GFLOPs of the 8-frame baseline (paper
# Table 6, same-computation rows).
_base_ = [
    '../_base_/models/timesformer-base-p16_sttm.py',
    '../_base_/datasets/sthv2_u11.py',
    '../_base_/schedules/adamw_linear_30e.py',
    '../_base_/default_runtime.py'
]

model = dict(backbone=dict(num_frames=11), cls_head=dict(num_classes=174))
