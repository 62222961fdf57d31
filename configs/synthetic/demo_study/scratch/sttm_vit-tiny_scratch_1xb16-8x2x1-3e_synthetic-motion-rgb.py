# `make demo`'s ViT-tiny + STTM, trained from scratch in one process with the
# batch of the demo's two (16). For the demo study
# (configs/synthetic/demo_study).
_base_ = ['../../sttm_vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py']

train_dataloader = dict(batch_size=16)
study = dict(
    name='sttm-r0.5',
    note="STTM as the demo sets it (blocks 2-3, ratio 0.5)",
    curve='STTM')
