# RLT, then STTM: repeats dropped at the input (threshold 0.2), then STTM's
# frozen reading at ratio 0.45, both merges spatio-temporal (a 'spatial' merge
# needs every frame's full grid, which RLT removes). Mean GFLOPs over the
# static dev split: 0.672 of the baseline's, those of STTM r0.7 alone (0.671).
_base_ = ['../../confirm/finetune/sttm-r0.7_spacetime-vit-tiny-p8-t2_shape-pre_1xb32-8x2x1-30e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        reducer=dict(type='RLT', threshold=0.2, mode='padded'),
        merger=dict(ratio=0.45, stages=('spatiotemporal', 'spatiotemporal'))))
study = dict(name='rlt-t0.2-sttm-r0.45', note='RLT (threshold 0.2), then STTM r0.45 (spatio-temporal merges), at the GFLOPs of STTM r0.7', curve='RLT + STTM')
