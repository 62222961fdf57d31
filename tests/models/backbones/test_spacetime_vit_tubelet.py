"""SpaceTimeViT with 2-frame tubelets: the embedding is a 3D patch
projection (checked against the formula), the merge schedule and the
temporal embedding count tubelets, and a wrong frame count fails at build."""
import pytest
import torch

from mmaction_sttm.models.backbones.spacetime_vit import SpaceTimeViT


def _model(**kwargs):
    cfg = dict(
        img_size=32,
        patch_size=8,
        num_frames=8,
        tubelet_size=2,
        embed_dims=32,
        depth=2,
        num_heads=2)
    cfg.update(kwargs)
    model = SpaceTimeViT(**cfg)
    model.init_weights()
    return model.eval()


def test_tubelet_embedding_is_the_3d_patch_projection():
    torch.manual_seed(0)
    model = _model()
    x = torch.randn(2, 3, 8, 32, 32)
    patches, grid = model.patch_embed(x)
    assert patches.shape == (2, 4, 16, 32) and grid == (4, 4)
    w = model.patch_embed.proj.weight  # (D, C, 2, 8, 8)
    b = model.patch_embed.proj.bias
    # Token (tubelet 1, row 2, column 3) by hand.
    block = x[:, :, 2:4, 16:24, 24:32]
    expected = torch.einsum('bcthw,dcthw->bd', block, w) + b
    torch.testing.assert_close(
        patches[:, 1, 2 * 4 + 3], expected, rtol=1e-4, atol=1e-4)


def test_tubelets_set_the_time_axis_and_the_geometry():
    model = _model(
        merger=dict(
            type='STTM', layers=(1, ), stages=('spatial', ), ratio=0.5))
    assert model.time_embed.shape == (1, 4, 32)
    assert model.geometry.tubelet == 2 and model.geometry.has_cls
    out = model(torch.randn(1, 3, 8, 32, 32))
    assert out.shape == (1, 32)


def test_frames_must_be_a_multiple_of_the_tubelet():
    with pytest.raises(ValueError, match='multiple of tubelet_size'):
        _model(num_frames=7)
