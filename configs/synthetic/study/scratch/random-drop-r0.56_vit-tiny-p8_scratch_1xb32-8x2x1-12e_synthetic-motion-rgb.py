# (d) RandomDrop at the GFLOPs of STTM r0.7, from scratch.
_base_ = ['../study_vit-tiny-p8_scratch_1xb32-8x2x1-12e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        merger=dict(
            type='RandomDrop',
            layers=(2, 3),
            stages=('spatial', 'spatiotemporal'),
            ratio=0.56)))
study = dict(
    name='random-drop-r0.56',
    note='RandomDrop, equal GFLOPs',
    curve='RandomDrop')
