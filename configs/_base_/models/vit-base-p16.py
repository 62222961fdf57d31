# The paper's ViT-B baseline (sec. 4.2): see vit-small-p16.py; ViT-B/16 has
# width 768 and 12 heads.
_base_ = ['./vit-small-p16.py']

model = dict(
    backbone=dict(
        embed_dims=768,
        num_heads=12,
        pretrained='checkpoints/vit-base-p16_in1k_spacetime-vit.pth'),
    cls_head=dict(in_channels=768))
