# The VideoMAE ViT-H/16 baseline with ToMe at -33% GFLOPs: a small bipartite
# merge after every block but the last (blocks 1-31), each removing 2.55% of
# the tokens over the whole clip (1568 -> 705 tokens): -33.1% GFLOPs (797.22
# against 1191.64 per view, get_flops.py at 16x224; 0.024 gives -31.6%, 0.026
# -33.7%). Readings as in videomae-vit-large-p16_tome.py.
_base_ = ['./videomae-vit-huge-p16.py']

model = dict(
    backbone=dict(
        prop_attn=True,
        merger=dict(
            type='ToMe',
            layers=tuple(range(1, 32)),
            stages=('spatiotemporal', ) * 31,
            ratio=0.0255,
            metric='tokens')))
