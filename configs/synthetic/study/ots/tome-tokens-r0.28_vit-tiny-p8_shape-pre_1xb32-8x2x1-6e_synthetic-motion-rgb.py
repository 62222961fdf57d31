# (c) ToMe matching by the tokens themselves (this project's earlier reading),
# equal GFLOPs, put into the fine-tuned baseline, not trained.
_base_ = ['../finetune/tome-tokens-r0.28_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

study = dict(
    name='tome-tokens-r0.28',
    note='ToMe by tokens, equal GFLOPs',
    curve='ToMe (tokens)',
    source='vit')
