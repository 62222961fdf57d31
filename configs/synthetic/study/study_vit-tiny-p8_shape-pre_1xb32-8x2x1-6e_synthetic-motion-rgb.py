# Base of regime (b) of tools/analysis_tools/study.py, the paper's regime: the
# study's ViT starts from the shape-pretrained backbone (pretrain/; the study
# tool sets the checkpoint of the same seed), the merger (if any) from its
# own init, and the whole model is fine-tuned on the motion classes, with a
# shorter schedule than from scratch.
_base_ = ['./study_vit-tiny-p8_scratch_1xb32-8x2x1-12e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/study/pretrain/vit/seed0/epoch_10.pth',
            prefix='backbone.')))

max_epochs = 6
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True,
         begin=1, end=max_epochs, convert_to_iter_based=True)
]
default_hooks = dict(
    checkpoint=dict(interval=max_epochs, save_best=None, max_keep_ckpts=1))
