# random token dropping, at the GFLOPs of STTM r0.7
_base_ = ['../confirm_spacetime-vit-tiny-p8-t2_shape-pre_1xb32-8x2x1-30e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        merger=dict(
            type='RandomDrop',
            layers=(2, 3),
            stages=('spatial', 'spatiotemporal'),
            ratio=0.59)))
study = dict(name='random-drop-r0.59', note='random token dropping, at the GFLOPs of STTM r0.7', curve='random drop')
