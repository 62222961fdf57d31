# STTM, the frozen reading (orthogonal fusion init, CLS-attention filter), ratio 0.7
_base_ = ['../confirm_spacetime-vit-tiny-p8-t2_shape-pre_1xb32-8x2x1-30e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        merger=dict(
            type='STTM',
            layers=(2, 3),
            stages=('spatial', 'spatiotemporal'),
            ratio=0.7,
            fuse_init='orthogonal')))
study = dict(name='sttm-r0.7', note='STTM, the frozen reading (orthogonal fusion init, CLS-attention filter), ratio 0.7', curve='STTM')
