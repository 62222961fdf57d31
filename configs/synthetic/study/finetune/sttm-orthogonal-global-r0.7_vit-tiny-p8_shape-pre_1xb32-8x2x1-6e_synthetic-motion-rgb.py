# (b) STTM, orthogonal init, ratio 0.7, spatio-temporal merges only (Table 5).
_base_ = ['./sttm-orthogonal-r0.7_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(merger=dict(stages=('spatiotemporal', 'spatiotemporal'))))
study = dict(
    name='sttm-orthogonal-global-r0.7',
    note='STTM, spatio-temporal merges only (Table 5)',
    curve='global-only')
