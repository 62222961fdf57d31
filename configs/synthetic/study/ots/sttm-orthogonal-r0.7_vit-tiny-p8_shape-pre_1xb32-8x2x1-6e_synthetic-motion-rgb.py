# (c) STTM, orthogonal init, ratio 0.7 (STTM r0.7 GFLOPs), put into the fine-tuned baseline, not trained.
_base_ = ['../finetune/sttm-orthogonal-r0.7_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

study = dict(
    name='sttm-orthogonal-r0.7',
    note='STTM, orthogonal init, ratio 0.7',
    curve='STTM (orthogonal)',
    source='vit')
