# STTM in the tiny ViT: a spatial merge after block 2 (49 -> 25 tokens per
# frame) and a spatio-temporal merge after block 3 (200 -> 100 tokens), the
# paper's two-stage schedule scaled from 12 blocks (6, 9) to 4.
_base_ = ['./spacetime-vit-tiny-p8_scratch_2xb8-8x2x1-20e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        merger=dict(
            type='STTM',
            layers=(2, 3),
            stages=('spatial', 'spatiotemporal'),
            ratio=0.5)))
