# TimeSformer counterpart of the study's ViT base: same data, size and
# schedule; TimeSformerSTTM without a merger is MMAction2's TimeSformer.
_base_ = ['./study_vit-tiny-p8_scratch_1xb32-8x2x1-12e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='TimeSformerSTTM',
        num_frames=8,
        img_size={{_base_.crop_size}},
        patch_size=8,
        embed_dims=96,
        num_heads=4,
        num_transformer_layers=4,
        attention_type='divided_space_time'))
