# ToMe by tokens (the reading the confirmatory study's dev runs chose, by its
# rule), ratio 0.22 after blocks 1-3 (0.728 of the baseline's GFLOPs): the
# point of RLT alone. Added by the amendment of 2026-12-04 (PROTOCOL.md).
_base_ = ['../../confirm/finetune/tome-tokens-r0.28_spacetime-vit-tiny-p8-t2_shape-pre_1xb32-8x2x1-30e_synthetic-motion-rgb.py']

model = dict(backbone=dict(merger=dict(ratio=0.22)))
study = dict(name='tome-tokens-r0.22', note='ToMe by tokens, ratio 0.22, at the mean GFLOPs of RLT (threshold 0.3)', curve='ToMe (tokens)')
