# Phase 4 of the VideoMAE-style study: phase 3's tome-tokens-r0.28, fine-tuned 12
# epochs instead of 6 (600 steps instead of 300), the same schedule's shape
# (as phase 2's fine-tune-length ablation). It keeps phase 3's variant name,
# so the protocol's comparisons read as phase 3's.
_base_ = ['../../videomae_shifted_study/finetune/tome-tokens-r0.28_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']  # noqa: E501

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True,
         begin=1, end=max_epochs, convert_to_iter_based=True)
]
default_hooks = dict(checkpoint=dict(interval=max_epochs))
study = dict(name='tome-tokens-r0.28', note='tome-tokens-r0.28, fine-tuned 12 epochs on shifted scenes')
