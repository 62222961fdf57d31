# (d) Baseline from scratch.
_base_ = ['../study_vit-tiny-p8_scratch_1xb32-8x2x1-12e_synthetic-motion-rgb.py']

study = dict(
    name='vit',
    note='baseline, no merger',
    curve='baseline')
