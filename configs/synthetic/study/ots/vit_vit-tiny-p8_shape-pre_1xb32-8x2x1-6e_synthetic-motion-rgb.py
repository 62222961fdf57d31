# (c) The fine-tuned baseline itself, tested the same way.
_base_ = ['../finetune/vit_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

study = dict(
    name='vit',
    note='baseline, no merger',
    curve='baseline',
    source='vit')
