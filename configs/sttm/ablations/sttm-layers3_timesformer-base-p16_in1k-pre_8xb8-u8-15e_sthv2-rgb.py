# Paper Table 4: one spatial STTM after block 3 ("for the case of inserting
# one STTM, we apply the spatial merging STTM", sec. 4.3).
_base_ = ['./sttm_timesformer-base-p16_in1k-pre_8xb8-u8-15e_sthv2-rgb.py']

model = dict(backbone=dict(merger=dict(layers=(3, ), stages=('spatial', ))))
