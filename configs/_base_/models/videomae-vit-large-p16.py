# VideoMAE ViT-L/16 (Tong et al., NeurIPS 2022) as MMAction2 builds it
# (configs/recognition/videomae/vit-large-p16_videomae-k400-pre_16x4x1_
# kinetics-400.py): 16 frames in tubelets of 2 (8 x 14 x 14 = 1568 tokens at
# 224), no CLS token, a fixed sinusoidal position table, q/v biases, mean
# pooling through fc_norm. MergingVisionTransformer without a merger computes
# exactly MMAction2's VisionTransformer (same parameter names, same
# checkpoints) on fused attention kernels, as the merging models do. The
# *_sttm.py and *_tome.py bases add the merger.
#
# Weights: VideoMAE's self-supervised Kinetics-400 checkpoint (the
# `videomae-k400-pre` of the config names), converted by
#   python tools/convert_weights.py checkpoint-1599.pth \
#       checkpoints/vit-large-p16_videomae-k400-pre_videomae-vit.pth \
#       --src-format videomae --dst videomae-vit
# (MMAction2's released recognizer checkpoints: --src-format
# mmaction-videomae; see mmaction_sttm/conversion/weights.py).
model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='MergingVisionTransformer',
        img_size=224,
        patch_size=16,
        embed_dims=1024,
        depth=24,
        num_heads=16,
        mlp_ratio=4,
        qkv_bias=True,
        num_frames=16,
        tubelet_size=2,
        norm_cfg=dict(type='LN', eps=1e-6),
        use_mean_pooling=True,
        # VideoMAE's fine-tuning default (run_class_finetuning.py
        # --drop_path 0.1, which its ViT-L Kinetics script keeps), linear
        # over the blocks.
        drop_path_rate=0.1,
        # No `merger`: the unmerged baseline.
        pretrained='checkpoints/vit-large-p16_videomae-k400-pre_'
        'videomae-vit.pth'),
    cls_head=dict(
        type='TimeSformerHead',
        num_classes=400,
        in_channels=1024,
        average_clips='prob'),
    # ImageNet statistics, which VideoMAE normalises its clips with (and
    # MMAction2's VideoMAE configs).
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))
