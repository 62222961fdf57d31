# (b) STTM, orthogonal init, ratio 0.7, spatial merges only (Table 5).
_base_ = ['./sttm-orthogonal-r0.7_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

model = dict(backbone=dict(merger=dict(stages=('spatial', 'spatial'))))
study = dict(
    name='sttm-orthogonal-spatial-r0.7',
    note='STTM, spatial merges only (Table 5)',
    curve='spatial-only')
