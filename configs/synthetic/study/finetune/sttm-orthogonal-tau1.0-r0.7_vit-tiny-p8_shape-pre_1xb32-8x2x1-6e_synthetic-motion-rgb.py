# (b) STTM, orthogonal init, ratio 0.7, correspondence temperature tau=1.0
# (the default reading is tau=0.1; the paper writes no temperature).
_base_ = ['./sttm-orthogonal-r0.7_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

model = dict(backbone=dict(merger=dict(tau=1.0)))
study = dict(
    name='sttm-orthogonal-tau1.0-r0.7',
    note='STTM, orthogonal init, ratio 0.7, tau 1.0',
    curve='tau 1.0')
