# (b) RandomDrop at the GFLOPs of STTM (orthogonal) at ratio 0.8.
_base_ = ['../study_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        merger=dict(
            type='RandomDrop',
            layers=(2, 3),
            stages=('spatial', 'spatiotemporal'),
            ratio=0.68)))
study = dict(
    name='random-drop-r0.68',
    note='RandomDrop, equal GFLOPs to STTM r0.8',
    curve='RandomDrop')
