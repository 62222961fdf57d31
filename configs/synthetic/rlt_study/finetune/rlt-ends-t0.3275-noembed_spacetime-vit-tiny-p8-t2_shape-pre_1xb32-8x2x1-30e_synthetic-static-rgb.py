# RLT as the authors' code runs it by default: pairs='ends' and no run-length
# embedding (dev-only, amendment of 2026-12-06 in
# docs/results/rlt/study/PROTOCOL.md). Threshold 0.3275 as rlt-ends-t0.3275:
# mean GFLOPs over the static dev split 0.732 of the baseline's.
_base_ = ['../../confirm/finetune/vit_spacetime-vit-tiny-p8-t2_shape-pre_1xb32-8x2x1-30e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        reducer=dict(
            type='RLT',
            threshold=0.3275,
            pairs='ends',
            length_embed=False,
            mode='padded')))
study = dict(name='rlt-ends-t0.3275-noembed', note='RLT, pairs=ends, threshold 0.3275, no run-length embedding; dev only', curve='RLT ends')
