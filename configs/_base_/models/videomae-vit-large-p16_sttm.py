# The VideoMAE ViT-L/16 baseline with two STTM modules at -33% GFLOPs. The
# paper's placement (sec. 4.2: merges after blocks 6 and 9 of 12) at the same
# relative depths of 24 blocks: a spatial merge after block 12 (inside each of
# the 8 tubelet slices, 196 -> 94 tokens) and a spatio-temporal one after block
# 18 (752 -> 361 tokens). The paper's ratio 0.5 gives -32.1% GFLOPs here; 0.52
# gives -33.1% (399.44 against 597.22 GFLOPs per view,
# tools/analysis_tools/get_flops.py at 16x224, the merges' own cost included),
# the -33% at which the project compares reducers. The zoo's reading on a model
# without CLS token (docs/method.md, "STTM without a CLS token"): the meta
# filter ranks by the mean query's attention, pooling is size-weighted, the
# fusion layer starts 'orthogonal' for fine-tuning.
_base_ = ['./videomae-vit-large-p16.py']

model = dict(
    backbone=dict(
        merger=dict(
            type='STTM',
            layers=(12, 18),
            stages=('spatial', 'spatiotemporal'),
            ratio=0.52,
            alpha=1.5,
            meta_filter=True,
            motion=True,
            fuse_init='orthogonal',
            tau=0.1)))
