# Paper Table 5, "Spatial": both STTM modules (after blocks 6 and 9) merge
# inside each frame only.
_base_ = ['./sttm_timesformer-base-p16_in1k-pre_8xb8-u8-15e_sthv2-rgb.py']

model = dict(backbone=dict(merger=dict(stages=('spatial', 'spatial'))))
