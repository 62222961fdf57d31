# (c) EViT ranking by cosine similarity to the mean token (this project's
# earlier reading), equal GFLOPs, put into the fine-tuned baseline, not trained.
_base_ = ['../finetune/evit-cosine-r0.64_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

study = dict(
    name='evit-cosine-r0.64',
    note='EViT by cosine, equal GFLOPs',
    curve='EViT (cosine)',
    source='vit')
