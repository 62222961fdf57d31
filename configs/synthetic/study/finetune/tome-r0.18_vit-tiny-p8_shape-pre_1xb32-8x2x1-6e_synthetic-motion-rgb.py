# (b) ToMe at the GFLOPs of STTM (orthogonal) at ratio 0.5.
# ToMe merges after blocks 1-3, as ToMe merges at every block.
_base_ = ['../study_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        merger=dict(
            type='ToMe',
            layers=(1, 2, 3),
            stages=('spatiotemporal', ) * 3,
            ratio=0.18)))
study = dict(
    name='tome-r0.18',
    note='ToMe, equal GFLOPs to STTM r0.5',
    curve='ToMe')
