# (b) STTM, orthogonal init, ratio 0.7, no meta filter (Table 2).
_base_ = ['./sttm-orthogonal-r0.7_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

model = dict(backbone=dict(merger=dict(meta_filter=False)))
study = dict(
    name='sttm-orthogonal-no-filter-r0.7',
    note='STTM, no meta filter (Table 2)',
    curve='no-filter')
