# The ViT-S/16 baseline on Something-Something V2, 8 frames (paper Table 6).
_base_ = [
    '../_base_/models/vit-small-p16.py',
    '../_base_/datasets/sthv2_u8.py',
    '../_base_/schedules/adamw_linear_30e.py',
    '../_base_/default_runtime.py'
]

model = dict(cls_head=dict(num_classes=174))
