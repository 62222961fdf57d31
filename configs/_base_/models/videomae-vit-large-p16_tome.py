# The VideoMAE ViT-L/16 baseline with ToMe at -33% GFLOPs: a small bipartite
# merge after every block but the last (ToMe merges at every block; blocks
# 1-23), each removing 3.4% of the tokens over the whole clip, 1568 tokens down
# to 706 before block 24: -33.3% GFLOPs (398.52 against 597.22 per view,
# get_flops.py at 16x224, matching included; one ratio for every merge, 0.033
# gives -32.5%, chosen to within 0.3 points of STTM's -33.1%). ToMe matches by
# the tokens with proportional attention, its reading in the project's fine-
# tuned frontier on a VideoMAE-style ViT
# (docs/results/frontier/videomae_finetuned/).
_base_ = ['./videomae-vit-large-p16.py']

model = dict(
    backbone=dict(
        prop_attn=True,
        merger=dict(
            type='ToMe',
            layers=tuple(range(1, 24)),
            stages=('spatiotemporal', ) * 23,
            ratio=0.034,
            metric='tokens')))
