# RLT, the RLT authors' reading of "the same patch" (dev-only, amendment of
# 2026-12-06 in docs/results/rlt/study/PROTOCOL.md): one pair per tubelet, its
# last frame against the previous tubelet's first (pairs='ends'); run-length
# embedding on (zero init), as rlt-t0.3. Threshold 0.3275, chosen by GFLOPs
# alone: mean over the static dev split 0.732 of the baseline's (rlt-t0.3:
# 0.733; 46.6 of 64 tokens kept, 31-56).
_base_ = ['../../confirm/finetune/vit_spacetime-vit-tiny-p8-t2_shape-pre_1xb32-8x2x1-30e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        reducer=dict(
            type='RLT', threshold=0.3275, pairs='ends', mode='padded')))
study = dict(name='rlt-ends-t0.3275', note='RLT, pairs=ends (the authors\' one pair), threshold 0.3275 (the GFLOPs of rlt-t0.3), run-length embedding (zero init); dev only', curve='RLT ends')
