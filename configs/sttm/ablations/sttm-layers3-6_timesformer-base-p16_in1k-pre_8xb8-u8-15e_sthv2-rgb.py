# Paper Table 4: two-stage merging after blocks 3 (spatial) and 6 (spatio-
# temporal); the reference merges after 6 and 9.
_base_ = ['./sttm_timesformer-base-p16_in1k-pre_8xb8-u8-15e_sthv2-rgb.py']

model = dict(backbone=dict(merger=dict(layers=(3, 6))))
