# (b) STTM, fuse_init='trunc_normal' (std 0.02 (the old zoo reading)), ratio 0.7 (33% fewer GFLOPs).
_base_ = ['../study_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        merger=dict(
            type='STTM',
            layers=(2, 3),
            stages=('spatial', 'spatiotemporal'),
            ratio=0.7,
            fuse_init='trunc_normal')))
study = dict(
    name='sttm-trunc-normal-r0.7',
    note='STTM, trunc_normal init, ratio 0.7',
    curve='STTM (trunc_normal)')
