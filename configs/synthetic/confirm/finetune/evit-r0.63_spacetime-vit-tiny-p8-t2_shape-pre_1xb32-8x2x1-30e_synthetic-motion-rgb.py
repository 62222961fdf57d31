# EViT (the CLS attention keeps the top tokens, the rest fused into one), at the GFLOPs of STTM r0.7
_base_ = ['../confirm_spacetime-vit-tiny-p8-t2_shape-pre_1xb32-8x2x1-30e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        merger=dict(
            type='EViT',
            layers=(2, 3),
            stages=('spatial', 'spatiotemporal'),
            ratio=0.63)))
study = dict(name='evit-r0.63', note='EViT (the CLS attention keeps the top tokens, the rest fused into one), at the GFLOPs of STTM r0.7', curve='EViT')
