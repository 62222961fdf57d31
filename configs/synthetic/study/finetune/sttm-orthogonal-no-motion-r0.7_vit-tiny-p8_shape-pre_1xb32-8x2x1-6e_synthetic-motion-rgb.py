# (b) STTM, orthogonal init, ratio 0.7, appearance only (Table 1).
_base_ = ['./sttm-orthogonal-r0.7_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

model = dict(backbone=dict(merger=dict(motion=False)))
study = dict(
    name='sttm-orthogonal-no-motion-r0.7',
    note='STTM, appearance only (Table 1)',
    curve='no-motion')
