# (c) ToMe, equal GFLOPs (STTM r0.7 GFLOPs), put into the fine-tuned baseline, not trained.
_base_ = ['../finetune/tome-r0.28_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

study = dict(
    name='tome-r0.28',
    note='ToMe, equal GFLOPs',
    curve='ToMe',
    source='vit')
