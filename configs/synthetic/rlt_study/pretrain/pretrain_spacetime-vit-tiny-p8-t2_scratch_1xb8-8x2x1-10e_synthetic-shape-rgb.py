# (a) The RLT study's pre-training: the confirmatory study's, unchanged (the
# shape task's still scenes do not depend on the camera).
_base_ = ['../../confirm/pretrain/pretrain_spacetime-vit-tiny-p8-t2_scratch_1xb8-8x2x1-10e_synthetic-shape-rgb.py']
