# TimeSformer-B/16 with divided space-time attention (sec. 4.2), 8 frames.
# MergingTimeSformer without a merger computes exactly MMAction2's TimeSformer
# (same parameters, same checkpoints) but on fused attention kernels, as the
# merging model does, so that speed comparisons are fair. Initialised from
# ImageNet-1K ViT-B weights converted with tools/convert_weights.py (--dst
# timesformer: temporal attention copied from the spatial one, temporal_fc
# zero, as MMAction2's TimeSformer.init_weights).
model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='MergingTimeSformer',
        num_frames=8,
        img_size=224,
        patch_size=16,
        embed_dims=768,
        num_heads=12,
        num_transformer_layers=12,
        in_channels=3,
        dropout_ratio=0.,
        transformer_layers=None,
        attention_type='divided_space_time',
        norm_cfg=dict(type='LN', eps=1e-6),
        # No `merger`: the unmerged baseline (the *_sttm.py bases add it).
        pretrained='checkpoints/vit-base-p16_in1k_timesformer.pth'),
    cls_head=dict(
        type='TimeSformerHead',
        num_classes=400,
        in_channels=768,
        average_clips='prob'),
    # ImageNet statistics of the ImageNet-1K weights; see vit-small-p16.py.
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))
