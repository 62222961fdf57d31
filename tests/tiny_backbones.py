"""Tiny versions of every merging backbone, shared by the tests: 3 blocks,
4 frames of 4 x 4 patches of 8 pixels, 32 channels.

Importable from any test: pytest puts ``tests/`` (the folder of
``conftest.py``, which is in no package) on ``sys.path``.
"""
DIMS, FRAMES, SIZE = 32, 4, 32

BACKBONES = {
    'vit':
    dict(type='SpaceTimeViT', img_size=SIZE, patch_size=8,
         num_frames=FRAMES, embed_dims=DIMS, depth=3, num_heads=2),
    'timesformer':
    dict(type='TimeSformerSTTM', num_frames=FRAMES, img_size=SIZE,
         patch_size=8, embed_dims=DIMS, num_heads=2,
         num_transformer_layers=3),
    'videomae':
    dict(type='VisionTransformerSTTM', img_size=SIZE, patch_size=8,
         embed_dims=DIMS, depth=3, num_heads=2, num_frames=FRAMES,
         tubelet_size=2),
    'mmpretrain':
    dict(type='MMPretrainViTSTTM',
         vit=dict(type='mmpretrain.VisionTransformer',
                  arch=dict(embed_dims=DIMS, num_layers=3, num_heads=2,
                            feedforward_channels=2 * DIMS),
                  img_size=SIZE, patch_size=8),
         num_frames=FRAMES),
    'timm':
    dict(type='TimmViTSTTM', model_name='vit_tiny_patch16_224',
         model_kwargs=dict(img_size=SIZE, patch_size=8, embed_dim=DIMS,
                           depth=3, num_heads=2),
         num_frames=FRAMES),
}
