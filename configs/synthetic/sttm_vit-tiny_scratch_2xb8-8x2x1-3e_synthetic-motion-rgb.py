# STTM in MMAction2's (VideoMAE) ViT, with the module's defaults
# (fuse_init='identity', meta_score='attention'). There is no CLS token, so
# the meta filter ranks by the attention of the mean query (docs/method.md)
# and pooling is size-weighted.
_base_ = ['./vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        type='MergingVisionTransformer',
        merger=dict(
            type='STTM',
            layers=(2, 3),
            stages=('spatial', 'spatiotemporal'),
            ratio=0.5)))
