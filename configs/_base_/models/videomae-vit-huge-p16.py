# VideoMAE ViT-H/16 (VideoMAE's released ViT-H: modeling_finetune.py
# vit_huge_patch16_224): as videomae-vit-large-p16.py, width 1280, 32 blocks,
# 16 heads. MMAction2 ships no ViT-H config; the layout is the same.
_base_ = ['./videomae-vit-large-p16.py']

model = dict(
    backbone=dict(
        embed_dims=1280,
        depth=32,
        num_heads=16,
        # VideoMAE's ViT-H Kinetics fine-tuning: --drop_path 0.2 and
        # --use_checkpoint (activation checkpointing per block).
        drop_path_rate=0.2,
        with_cp=True,
        pretrained='checkpoints/vit-huge-p16_videomae-k400-pre_'
        'videomae-vit.pth'),
    # VideoMAE's ViT-H script: --fc_drop_rate 0.5 before the classifier.
    cls_head=dict(in_channels=1280, dropout_ratio=0.5))
