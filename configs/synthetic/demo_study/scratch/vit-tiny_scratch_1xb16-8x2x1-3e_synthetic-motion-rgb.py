# `make demo`'s baseline, trained from scratch in one process with the batch
# of the demo's two (16). For the demo study (configs/synthetic/demo_study).
_base_ = ['../../vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py']

train_dataloader = dict(batch_size=16)
study = dict(
    name='vit',
    note="the demo's ViT-tiny, no merger",
    curve='baseline')
