# (b) STTM, orthogonal init, ratio 0.2 (Table 3).
_base_ = ['./sttm-orthogonal-r0.7_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

model = dict(backbone=dict(merger=dict(ratio=0.2)))
study = dict(
    name='sttm-orthogonal-r0.2',
    note='STTM, orthogonal init, ratio 0.2',
    curve='STTM (orthogonal)')
