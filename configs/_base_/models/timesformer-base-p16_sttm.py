# The baseline in `_base_` with two STTM modules (paper sec. 4.2): a spatial
# merge after block 6 (inside every frame) and a spatio-temporal merge after
# block 9 (over all remaining tokens), merge ratio 0.5, 1.5x meta-token
# candidates filtered by the CLS token's attention, motion features fused
# with the appearance (eq. 2). The modules' parameters start random, as in
# the paper, by our reading 'orthogonal' (docs/method.md, "Readings").
# Each ablation of Tables 1-5 changes one key of `merger`
# (configs/sttm/ablations/).
_base_ = ['./timesformer-base-p16.py']

model = dict(
    backbone=dict(
        merger=dict(
            type='STTM',
            layers=(6, 9),
            stages=('spatial', 'spatiotemporal'),
            ratio=0.5,
            alpha=1.5,
            meta_filter=True,
            motion=True,
            fuse_init='orthogonal',
            tau=0.1)))
