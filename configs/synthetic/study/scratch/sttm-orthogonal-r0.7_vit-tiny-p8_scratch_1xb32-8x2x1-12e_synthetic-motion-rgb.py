# (d) STTM, fuse_init='orthogonal', ratio 0.7, from scratch.
_base_ = ['../study_vit-tiny-p8_scratch_1xb32-8x2x1-12e_synthetic-motion-rgb.py']

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
