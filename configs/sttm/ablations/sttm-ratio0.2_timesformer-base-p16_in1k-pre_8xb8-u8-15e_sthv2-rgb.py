# Paper Table 3: merge ratio 0.2 in both STTM modules (the reference uses
# 0.5).
_base_ = ['./sttm_timesformer-base-p16_in1k-pre_8xb8-u8-15e_sthv2-rgb.py']

model = dict(backbone=dict(merger=dict(ratio=0.2)))
