# Paper Table 1, "only appearance embedding": STTM without motion features,
# so the output is the appearance A = C^T X alone and the module has no
# fusion layer.
_base_ = ['./sttm_timesformer-base-p16_in1k-pre_8xb8-u8-15e_sthv2-rgb.py']

model = dict(backbone=dict(merger=dict(motion=False)))
