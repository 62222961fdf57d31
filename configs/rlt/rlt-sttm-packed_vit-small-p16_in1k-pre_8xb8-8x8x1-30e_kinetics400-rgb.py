# RLT, then STTM, as in rlt-sttm_vit-small-p16_..., with the batch's videos
# packed into one sequence instead of padded to the longest (the token-wise
# layers run on the real tokens only; mmaction_sttm/functional/attention.py).
_base_ = ['./rlt-sttm_vit-small-p16_in1k-pre_8xb8-8x8x1-30e_kinetics400-rgb.py']

model = dict(backbone=dict(batching='packed'))
