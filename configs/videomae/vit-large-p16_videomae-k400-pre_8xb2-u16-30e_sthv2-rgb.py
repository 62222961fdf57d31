# VideoMAE ViT-L/16, the unmerged baseline, on Something-Something V2, 16
# frames sampled uniformly.
# Initialised from VideoMAE's Kinetics-400 pre-training (VideoMAE pre-trains
# on SSv2 itself for its SSv2 results: convert such a checkpoint the same
# way and point model.backbone.pretrained at it).
_base_ = [
    '../_base_/models/videomae-vit-large-p16.py',
    '../_base_/datasets/sthv2_u16.py',
    '../_base_/schedules/adamw_layer-decay_cosine_30e.py',
    '../_base_/default_runtime.py'
]

model = dict(cls_head=dict(num_classes=174))
