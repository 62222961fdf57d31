# RLT, then STTM: the repeats are removed at the input, then STTM merges
# what is left, with the zoo's STTM reading (after blocks 6 and 9, ratio
# 0.5, configs/_base_/models/vit-small-p16_sttm.py). After RLT the frames no
# longer hold the same number of tokens, so both merges are spatio-temporal:
# a 'spatial' merge needs every frame's full patch grid and is refused with
# a reducer.
_base_ = ['./rlt_vit-small-p16_in1k-pre_8xb8-8x8x1-30e_kinetics400-rgb.py']

model = dict(
    backbone=dict(
        merger=dict(
            type='STTM',
            layers=(6, 9),
            stages=('spatiotemporal', 'spatiotemporal'),
            ratio=0.5,
            alpha=1.5,
            meta_filter=True,
            motion=True,
            fuse_init='orthogonal',
            tau=0.1)))
