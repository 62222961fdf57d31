# (c) EViT, equal GFLOPs (STTM r0.7 GFLOPs), put into the fine-tuned baseline, not trained.
_base_ = ['../finetune/evit-r0.64_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

study = dict(
    name='evit-r0.64',
    note='EViT, equal GFLOPs',
    curve='EViT',
    source='vit')
