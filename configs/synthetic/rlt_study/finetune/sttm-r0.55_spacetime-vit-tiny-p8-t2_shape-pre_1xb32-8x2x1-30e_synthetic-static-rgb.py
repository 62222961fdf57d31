# STTM alone, the frozen reading, ratio 0.55 (0.736 of the baseline's
# GFLOPs): the point of RLT alone (threshold 0.3, mean 0.733 on the dev split)
_base_ = ['../../confirm/finetune/sttm-r0.7_spacetime-vit-tiny-p8-t2_shape-pre_1xb32-8x2x1-30e_synthetic-motion-rgb.py']

model = dict(backbone=dict(merger=dict(ratio=0.55)))
study = dict(name='sttm-r0.55', note='STTM, the frozen reading, ratio 0.55, at the mean GFLOPs of RLT (threshold 0.3)', curve='STTM')
