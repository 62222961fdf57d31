# RLT as in rlt_vit-small-p16_..., with the batch's videos packed into one
# sequence (a block-diagonal attention mask keeps each video to itself)
# instead of padded to the longest: no compute on padding in the token-wise
# layers (docs/benchmark.md, "RLT").
_base_ = ['./rlt_vit-small-p16_in1k-pre_8xb8-8x8x1-30e_kinetics400-rgb.py']

model = dict(backbone=dict(reducer=dict(mode='packed')))
