# VideoMAE ViT-H/16, the unmerged baseline, on Something-Something V2, 16
# frames sampled uniformly.
# Initialised from VideoMAE's Kinetics-400 pre-training (VideoMAE pre-trains
# on SSv2 itself for its SSv2 results: convert such a checkpoint the same
# way and point model.backbone.pretrained at it).
_base_ = [
    '../_base_/models/videomae-vit-huge-p16.py',
    '../_base_/datasets/sthv2_u16.py',
    '../_base_/schedules/adamw_layer-decay_cosine_30e.py',
    '../_base_/default_runtime.py'
]

model = dict(cls_head=dict(num_classes=174))
# VideoMAE's ViT-H rate, 1e-3 per 256 videos, for 16 videos per step.
optim_wrapper = dict(
    optimizer=dict(lr=6.25e-5), paramwise_cfg=dict(num_layers=32))
