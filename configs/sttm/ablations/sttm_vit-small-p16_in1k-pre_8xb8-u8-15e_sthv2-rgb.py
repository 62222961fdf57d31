# ViT-S/16 + STTM on SSv2 for 15 epochs: the reference of the "meta
# filtering" row of paper Table 2 for this backbone.
_base_ = [
    '../../_base_/models/vit-small-p16_sttm.py',
    '../../_base_/datasets/sthv2_u8.py',
    '../../_base_/schedules/adamw_linear_15e.py',
    '../../_base_/default_runtime.py'
]

model = dict(cls_head=dict(num_classes=174))
