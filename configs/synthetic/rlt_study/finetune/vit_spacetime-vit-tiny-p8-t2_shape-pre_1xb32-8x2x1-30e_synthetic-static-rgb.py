# baseline, no reducer, no merger (the confirmatory study's model and recipe;
# the data is the static-camera split, set by the study's protocol.py)
_base_ = ['../../confirm/finetune/vit_spacetime-vit-tiny-p8-t2_shape-pre_1xb32-8x2x1-30e_synthetic-motion-rgb.py']

study = dict(name='vit', note='baseline, no reducer, no merger', curve='baseline')
