# (b) STTM, orthogonal init, ratio 0.7, the greedy selection started from a
# random token (the paper's words) instead of the most attentive one.
_base_ = ['./sttm-orthogonal-r0.7_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

model = dict(backbone=dict(merger=dict(greedy_start='random')))
study = dict(
    name='sttm-orthogonal-random-start-r0.7',
    note='STTM, greedy selection from a random token',
    curve='random start')
