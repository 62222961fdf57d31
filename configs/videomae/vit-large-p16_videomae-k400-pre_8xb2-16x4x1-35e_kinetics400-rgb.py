# VideoMAE ViT-L/16, the unmerged baseline, on Kinetics-400, 16 frames one
# every 4th.
_base_ = [
    '../_base_/models/videomae-vit-large-p16.py',
    '../_base_/datasets/kinetics400_16x4x1.py',
    '../_base_/schedules/adamw_layer-decay_cosine_35e.py',
    '../_base_/default_runtime.py'
]
