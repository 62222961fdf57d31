# Base of the confirmatory study (docs/results/confirm/PROTOCOL.md): the
# paper's ViT (SpaceTimeViT: 2D patches per frame, a CLS token, joint
# space-time attention), as the zoo's ViT-S/B, scaled to 2 CPU cores:
# 32x32 frames, 8x8 patches (8 frames x 16 tokens), 4 blocks, 96 channels.
# The CLS token makes the meta filter rank by the CLS query's attention, the
# zoo's path. It starts from the shape-pretrained backbone of the same seed
# (pretrain/; the study tool sets the checkpoint), the merger (if any) from
# its own init, and the whole model is fine-tuned on the motion classes
# (regime (b), the paper's), validating on the dev split every epoch so that
# the run's learning curve is kept.
_base_ = ['../study/study_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='SpaceTimeViT',
        img_size=32,
        patch_size=8,
        num_frames=8,
        tubelet_size=2,
        embed_dims=96,
        depth=4,
        num_heads=4,
        pos_init_std=0.5,  # as pre-trained; the checkpoint overwrites it
        init_cfg=dict(
            type='Pretrained',
            checkpoint='work_dirs/confirm/test/pretrain/vit/seed0/epoch_10.pth',
            prefix='backbone.')))

max_epochs = 30
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True,
         begin=1, end=max_epochs, convert_to_iter_based=True)
]
default_hooks = dict(
    checkpoint=dict(interval=max_epochs, save_best=None, max_keep_ckpts=1))
