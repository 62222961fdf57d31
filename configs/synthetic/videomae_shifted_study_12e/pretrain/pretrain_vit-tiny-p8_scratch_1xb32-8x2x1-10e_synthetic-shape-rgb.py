# (a) Phase 4 of the VideoMAE-style study: phase 3's pre-training, unchanged
# (the exploratory study's shape task, one backbone per seed).
_base_ = ['../../videomae_shifted_study/pretrain/pretrain_vit-tiny-p8_scratch_1xb32-8x2x1-10e_synthetic-shape-rgb.py']  # noqa: E501
