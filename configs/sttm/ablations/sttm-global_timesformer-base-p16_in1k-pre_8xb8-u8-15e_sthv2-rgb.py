# Paper Table 5, "Global": both STTM modules merge over all tokens of the
# clip, without a spatial stage first.
_base_ = ['./sttm_timesformer-base-p16_in1k-pre_8xb8-u8-15e_sthv2-rgb.py']

model = dict(
    backbone=dict(
        merger=dict(stages=('spatiotemporal', 'spatiotemporal'))))
