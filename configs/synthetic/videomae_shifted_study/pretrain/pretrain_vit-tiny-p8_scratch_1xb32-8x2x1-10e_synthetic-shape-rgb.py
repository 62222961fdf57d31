# (a) Phase 3 of the VideoMAE-style study: the same pre-training as phases 1
# and 2 (the exploratory study's shape task, one backbone per seed).
_base_ = ['../../study/pretrain/pretrain_vit-tiny-p8_scratch_1xb32-8x2x1-10e_synthetic-shape-rgb.py']  # noqa: E501
