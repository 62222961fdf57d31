# The demo's ViT with ToMe instead of STTM, at STTM's GFLOPs (0.8% fewer):
# ToMe merges after blocks 1-3 (it merges at every block), by the keys of
# the block before each merge. For the demo's merger comparison
# (docs/results/confirm/PROTOCOL.md, "Secondary"); `make demo` trains the
# ViT and ViT+STTM.
_base_ = ['./vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        type='MergingVisionTransformer',
        merger=dict(
            type='ToMe',
            layers=(1, 2, 3),
            stages=('spatiotemporal', ) * 3,
            ratio=0.18)))
