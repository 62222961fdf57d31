# rlt-t0.3 without the run-length embedding (length_embed=False, the RLT
# authors' default; dev-only, amendment of 2026-12-06 in
# docs/results/rlt/study/PROTOCOL.md). Same tokens kept as rlt-t0.3: mean
# GFLOPs over the static dev split 0.733 of the baseline's.
_base_ = ['../../confirm/finetune/vit_spacetime-vit-tiny-p8-t2_shape-pre_1xb32-8x2x1-30e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        reducer=dict(
            type='RLT', threshold=0.3, length_embed=False, mode='padded')))
study = dict(name='rlt-t0.3-noembed', note='RLT, threshold 0.3, pairs=all, no run-length embedding; dev only', curve='RLT')
