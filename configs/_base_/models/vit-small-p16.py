# The paper's ViT-S baseline (sec. 4.2): a plain ViT-S/16 on every frame's 2D
# patches, joint space-time attention over all 8 x 196 tokens plus CLS, a
# learned spatial and a learned temporal position embedding. Initialised from
# ImageNet-1K weights converted with tools/convert_weights.py (--dst
# spacetime-vit); see docs/getting_started.md.
model = dict(
    type='Recognizer3D',
    backbone=dict(
        type='SpaceTimeViT',
        img_size=224,
        patch_size=16,
        num_frames=8,
        embed_dims=384,
        depth=12,
        num_heads=6,
        # TimeSformer's rate in MMAction2 (linear 0 -> 0.1 over the blocks),
        # so that the three backbones are regularised alike.
        drop_path_rate=0.1,
        # No `merger`: the unmerged baseline (the *_sttm.py bases add it).
        pretrained='checkpoints/vit-small-p16_in1k_spacetime-vit.pth'),
    cls_head=dict(
        type='TimeSformerHead',
        num_classes=400,
        in_channels=384,
        average_clips='prob'),
    # ImageNet statistics, as the ImageNet-1K (DeiT) weights were trained
    # with. Weights trained with 0.5 / 0.5 normalisation (timm's augreg ViTs,
    # MMAction2's TimeSformer file) need mean=std=[127.5] * 3 instead.
    data_preprocessor=dict(
        type='ActionDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        format_shape='NCTHW'))
