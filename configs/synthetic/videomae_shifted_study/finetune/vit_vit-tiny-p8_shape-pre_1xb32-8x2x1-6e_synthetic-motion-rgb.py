# Phase 3 of the VideoMAE-style study: phase 1's variant, unchanged; the
# protocol fine-tunes it on shifted scenes.
_base_ = ['../../videomae_study/finetune/vit_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']  # noqa: E501
