# (b) EViT ranking by cosine similarity to the mean token (this project's
# earlier reading), at the GFLOPs of STTM r0.7.
_base_ = ['../study_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        merger=dict(
            type='EViT',
            layers=(2, 3),
            stages=('spatial', 'spatiotemporal'),
            ratio=0.64,
            score='cosine')))
study = dict(
    name='evit-cosine-r0.64',
    note='EViT by cosine, equal GFLOPs to STTM r0.7',
    curve='EViT (cosine)')
