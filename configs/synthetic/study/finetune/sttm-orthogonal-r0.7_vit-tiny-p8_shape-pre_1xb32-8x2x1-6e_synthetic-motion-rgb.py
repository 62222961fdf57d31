# (b) STTM, fuse_init='orthogonal' (orthogonal on A, std 0.02 on P), ratio 0.7 (33% fewer GFLOPs).
_base_ = ['../study_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        merger=dict(
            type='STTM',
            layers=(2, 3),
            stages=('spatial', 'spatiotemporal'),
            ratio=0.7,
            fuse_init='orthogonal')))
study = dict(
    name='sttm-orthogonal-r0.7',
    note='STTM, orthogonal init, ratio 0.7',
    curve='STTM (orthogonal)')
