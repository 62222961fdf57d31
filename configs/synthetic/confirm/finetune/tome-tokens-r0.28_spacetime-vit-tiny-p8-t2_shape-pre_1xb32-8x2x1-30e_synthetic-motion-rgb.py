# ToMe by tokens, after blocks 1-3 (ToMe merges at every block), at the GFLOPs of STTM r0.7
_base_ = ['../confirm_spacetime-vit-tiny-p8-t2_shape-pre_1xb32-8x2x1-30e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        prop_attn=False,
        merger=dict(
            type='ToMe',
            layers=(1, 2, 3),
            stages=('spatiotemporal', ) * 3,
            ratio=0.28,
            metric='tokens')))
study = dict(name='tome-tokens-r0.28', note='ToMe by tokens, after blocks 1-3 (ToMe merges at every block), at the GFLOPs of STTM r0.7', curve='ToMe (tokens)')
