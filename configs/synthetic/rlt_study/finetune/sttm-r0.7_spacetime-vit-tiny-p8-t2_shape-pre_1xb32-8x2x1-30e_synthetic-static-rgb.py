# STTM alone, the frozen reading of the confirmatory study, ratio 0.7 (0.671
# of the baseline's GFLOPs): the point of RLT + STTM
_base_ = ['../../confirm/finetune/sttm-r0.7_spacetime-vit-tiny-p8-t2_shape-pre_1xb32-8x2x1-30e_synthetic-motion-rgb.py']

study = dict(name='sttm-r0.7', note='STTM, the frozen reading, ratio 0.7, at the GFLOPs of RLT + STTM', curve='STTM')
