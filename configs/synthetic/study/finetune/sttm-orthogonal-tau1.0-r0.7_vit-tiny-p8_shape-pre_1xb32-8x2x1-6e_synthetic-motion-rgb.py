# (b) STTM, orthogonal init, ratio 0.7, correspondence temperature tau=1.0
# (the default reading is tau=0.1; the paper writes no temperature).
_base_ = ['../study_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        merger=dict(
            type='STTM',
            layers=(2, 3),
            stages=('spatial', 'spatiotemporal'),
            ratio=0.7,
            fuse_init='orthogonal',
            tau=1.0)))
study = dict(
    name='sttm-orthogonal-tau1.0-r0.7',
    note='STTM, orthogonal init, ratio 0.7, tau 1.0',
    curve='tau 1.0')
