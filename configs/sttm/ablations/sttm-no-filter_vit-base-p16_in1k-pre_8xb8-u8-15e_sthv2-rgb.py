# Paper Table 2 without meta filtering (ViT-B/16): the greedy selection picks
# the output count directly instead of 1.5x candidates filtered by the CLS
# token.
_base_ = ['./sttm_vit-base-p16_in1k-pre_8xb8-u8-15e_sthv2-rgb.py']

model = dict(backbone=dict(merger=dict(meta_filter=False)))
