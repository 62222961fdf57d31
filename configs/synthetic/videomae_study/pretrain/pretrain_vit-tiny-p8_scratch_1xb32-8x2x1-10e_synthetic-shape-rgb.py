# (a) The VideoMAE-style study's pre-training: the exploratory study's own
# (frame-level shape task, 10 epochs), once per seed: every seed has a
# backbone of its own, so the variance between backbones is in every
# interval (docs/results/videomae/PROTOCOL.md).
_base_ = ['../../study/pretrain/pretrain_vit-tiny-p8_scratch_1xb32-8x2x1-10e_synthetic-shape-rgb.py']  # noqa: E501
