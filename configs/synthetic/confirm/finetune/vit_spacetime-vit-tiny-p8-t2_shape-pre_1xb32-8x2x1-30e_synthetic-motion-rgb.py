# baseline, no merger
_base_ = ['../confirm_spacetime-vit-tiny-p8-t2_shape-pre_1xb32-8x2x1-30e_synthetic-motion-rgb.py']

study = dict(name='vit', note='baseline, no merger', curve='baseline')
