# (c) RandomDrop, equal GFLOPs (STTM r0.7 GFLOPs), put into the fine-tuned baseline, not trained.
_base_ = ['../finetune/random-drop-r0.56_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

study = dict(
    name='random-drop-r0.56',
    note='RandomDrop, equal GFLOPs',
    curve='RandomDrop',
    source='vit')
