# RLT alone: a tubelet that repeats the one before it (mean |difference| below
# 0.3 in normalised units) is dropped before the first block; padded batches.
# Mean GFLOPs over the static dev split: 0.733 of the baseline's (46.6 of 64
# tokens kept, 31-59).
_base_ = ['../../confirm/finetune/vit_spacetime-vit-tiny-p8-t2_shape-pre_1xb32-8x2x1-30e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(reducer=dict(type='RLT', threshold=0.3, mode='padded')))
study = dict(name='rlt-t0.3', note='RLT, threshold 0.3, run-length embedding (zero init)', curve='RLT')
