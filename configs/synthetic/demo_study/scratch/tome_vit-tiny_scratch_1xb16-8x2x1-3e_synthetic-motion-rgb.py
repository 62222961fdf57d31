# The demo's ViT-tiny + ToMe at STTM's GFLOPs, trained from scratch in one
# process with the batch of the demo's two (16). For the demo study
# (configs/synthetic/demo_study).
_base_ = ['../../tome_vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py']

train_dataloader = dict(batch_size=16)
study = dict(
    name='tome-r0.18',
    note="ToMe at STTM's GFLOPs (blocks 1-3, ratio 0.18)",
    curve='ToMe')
