# The VideoMAE ViT-H/16 baseline with two STTM modules at -33% GFLOPs: the
# paper's placement (merges after blocks 6 and 9 of 12) at the same relative
# depths of 32 blocks, a spatial merge after block 16 (196 -> 94 tokens per
# tubelet slice) and a spatio-temporal one after block 24 (752 -> 361). The
# paper's ratio 0.5 gives -32.1% GFLOPs; 0.52 gives -33.1% (796.96 against
# 1191.64 GFLOPs per view, get_flops.py at 16x224). Readings as in
# videomae-vit-large-p16_sttm.py.
_base_ = ['./videomae-vit-huge-p16.py']

model = dict(
    backbone=dict(
        merger=dict(
            type='STTM',
            layers=(16, 24),
            stages=('spatial', 'spatiotemporal'),
            ratio=0.52,
            alpha=1.5,
            meta_filter=True,
            motion=True,
            fuse_init='orthogonal',
            tau=0.1)))
