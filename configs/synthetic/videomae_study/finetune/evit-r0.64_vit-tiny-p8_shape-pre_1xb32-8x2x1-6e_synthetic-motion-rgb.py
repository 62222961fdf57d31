# The exploratory study's config, unchanged (regime b: VideoMAE-style ViT,
# no CLS token, mean pooling; 6 epochs of fine-tuning).
_base_ = ['../../study/finetune/evit-r0.64_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']  # noqa: E501
