# (b) STTM, fuse_init='residual' (Y = A + fuse([A, P]), fuse std 0.02), ratio 0.7 (33% fewer GFLOPs).
_base_ = ['../study_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        merger=dict(
            type='STTM',
            layers=(2, 3),
            stages=('spatial', 'spatiotemporal'),
            ratio=0.7,
            fuse_init='residual')))
study = dict(
    name='sttm-residual-r0.7',
    note='STTM, residual init, ratio 0.7',
    curve='STTM (residual)')
