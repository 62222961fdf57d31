"""``apply_merger``: a model built in code gets the module that the config
path builds (merging backbone + merger, weights loaded from the unmerged
model), for every family and for a whole recognizer."""
import pytest
import torch
from mmaction.utils import register_all_modules
from tiny_backbones import DIMS, FRAMES, SIZE

import mmaction_sttm  # noqa: F401
from mmaction_sttm import apply_merger
from mmaction_sttm.models.catalog import FAMILIES
from mmaction_sttm.registry import MODELS

register_all_modules()

MERGER = dict(type='STTM', layers=(1, 2), ratio=0.5)
# A TimeSformer drops the temporal attention of the blocks after the first
# merge: merge late too, so that blocks 1 and 2 keep theirs.
MERGER_LATE = dict(type='STTM', layers=(2, ), ratio=0.5)


def _clip(batch: int = 2) -> torch.Tensor:
    return torch.randn(
        batch,
        3,
        FRAMES,
        SIZE,
        SIZE,
        generator=torch.Generator().manual_seed(1))


def _source(family) -> torch.nn.Module:
    """The unmerged model a user has: MMAction2's class where the family
    stands in for one, else the family without a merger."""
    cfg = family.tiny(DIMS, FRAMES, SIZE)
    if family.replaces:
        cfg['type'] = family.replaces
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    with torch.no_grad():  # nothing left at zero (time embeddings, biases)
        for param in model.parameters():
            param.add_(0.01 * torch.randn_like(param))
    return model.eval()


def _config_path(family, source, merger) -> torch.nn.Module:
    """Build the merging config and load the unmerged model's weights, as
    ``load_from`` does."""
    model = MODELS.build(dict(family.tiny(DIMS, FRAMES, SIZE), merger=merger))
    model.init_weights()
    result = model.load_state_dict(source.state_dict(), strict=False)
    assert all(key.startswith('merge.') for key in result.missing_keys)
    return model.eval()


@pytest.mark.parametrize('family', FAMILIES, ids=lambda f: f.name)
@pytest.mark.parametrize(
    'merger', [MERGER, MERGER_LATE], ids=['after12', 'after2'])
def test_backbone_equals_config_path(family, merger):
    source = _source(family)
    before = {k: v.clone() for k, v in source.state_dict().items()}
    merged = apply_merger(source, merger)
    expected = _config_path(family, source, merger)
    assert type(merged) is type(expected)
    assert merged.state_dict().keys() == expected.state_dict().keys()
    for key, value in expected.state_dict().items():
        torch.testing.assert_close(
            merged.state_dict()[key], value, rtol=0, atol=0, msg=key)
    with torch.no_grad():
        out = merged(_clip())
        torch.testing.assert_close(out, expected(_clip()), rtol=0, atol=0)
        # The merge runs: the output is not the unmerged model's.
        assert not torch.allclose(out, source(_clip()), atol=1e-4)
    # Not in place: the user's model is as it was.
    assert getattr(source, 'merge_schedule', None) is None
    assert type(source).__name__ == (family.replaces or family.type)
    for key, value in source.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


def test_recognizer_equals_config_path():
    tiny = dict(
        num_frames=FRAMES,
        img_size=SIZE,
        patch_size=8,
        embed_dims=DIMS,
        num_heads=2,
        num_transformer_layers=3)
    recognizer = dict(
        type='Recognizer3D',
        backbone=dict(type='TimeSformer', **tiny),
        cls_head=dict(type='TimeSformerHead', num_classes=5, in_channels=DIMS),
        data_preprocessor=dict(
            type='ActionDataPreprocessor', format_shape='NCTHW'))
    torch.manual_seed(0)
    source = MODELS.build(recognizer)
    source.init_weights()
    source.eval()
    merged = apply_merger(source, MERGER, prop_attn=True)
    config = dict(
        recognizer,
        backbone=dict(
            tiny, type='MergingTimeSformer', merger=MERGER, prop_attn=True))
    expected = MODELS.build(config)
    expected.load_state_dict(source.state_dict(), strict=False)
    expected.eval()
    assert type(merged) is type(source)
    assert type(merged.backbone).__name__ == 'MergingTimeSformer'
    assert merged.backbone.prop_attn
    inputs = _clip()[:, None]  # (N, clips, C, T, H, W)
    with torch.no_grad():
        torch.testing.assert_close(
            merged(inputs, mode='tensor'),
            expected(inputs, mode='tensor'),
            rtol=0,
            atol=0)


def test_inplace_changes_the_model_itself():
    family = next(f for f in FAMILIES if f.name == 'videomae')
    source = _source(family)
    merged = apply_merger(source, MERGER, inplace=True)
    assert merged is source
    assert type(source).__name__ == 'MergingVisionTransformer'


def test_errors_name_the_problem():
    family = next(f for f in FAMILIES if f.name == 'timesformer')
    merged = apply_merger(_source(family), MERGER)
    with pytest.raises(ValueError, match='has a merger already'):
        apply_merger(merged, MERGER)
    with pytest.raises(TypeError, match='Linear has no merging twin'):
        apply_merger(torch.nn.Linear(2, 2), MERGER)
    space_only = MODELS.build(
        dict(
            family.tiny(DIMS, FRAMES, SIZE),
            type='TimeSformer',
            attention_type='space_only'))
    with pytest.raises(ValueError, match='divided_space_time'):
        apply_merger(space_only, MERGER)
    with pytest.raises(TypeError, match="unknown key 'alpah'"):
        apply_merger(_source(family), dict(MERGER, alpah=0.5))


def test_a_built_timm_vit_merges_as_tome_patches_it():
    """ToMe's habit: ``apply_merger`` on a timm ``VisionTransformer``
    instance gives the MergingTimmViT of the config path around the same
    weights; on a clip of identical frames it is the image model per frame
    (temporal embedding zero), and its GFLOPs drop as the schedule says."""
    import timm
    from mmengine.analysis import FlopAnalyzer

    from mmaction_sttm.models.backbones import MergingTimmViT
    torch.manual_seed(0)
    image = timm.create_model(
        'vit_tiny_patch16_224',
        img_size=SIZE,
        patch_size=8,
        embed_dim=DIMS,
        depth=3,
        num_heads=2,
        num_classes=7).eval()
    before = {k: v.clone() for k, v in image.state_dict().items()}
    plain = apply_merger(image, None, num_frames=FRAMES).eval()
    merged = apply_merger(
        image, dict(type='STTM', layers=(1, 2), ratio=0.5),
        num_frames=FRAMES).eval()
    assert type(merged) is MergingTimmViT and merged.vit is not image
    assert image.num_classes == 7  # the user's model is untouched
    for key, value in image.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    clip = _clip(batch=1)
    # The config path, with the image model's weights loaded into it.
    config = MODELS.build(
        dict(
            type='MergingTimmViT',
            model_name='vit_tiny_patch16_224',
            model_kwargs=dict(
                img_size=SIZE,
                patch_size=8,
                embed_dim=DIMS,
                depth=3,
                num_heads=2),
            num_frames=FRAMES,
            merger=dict(type='STTM', layers=(1, 2), ratio=0.5))).eval()
    weights = {
        k: v
        for k, v in image.state_dict().items() if not k.startswith('head.')
    }
    config.vit.load_state_dict(weights)
    assert merged.state_dict().keys() == config.state_dict().keys()
    with torch.no_grad():
        torch.testing.assert_close(merged(clip), config(clip), rtol=0, atol=0)
        assert not torch.allclose(merged(clip), plain(clip), atol=1e-4)
        flops = [FlopAnalyzer(m, (clip, )).total() for m in (plain, merged)]
    assert FlopAnalyzer(config, (clip, )).total() == flops[1]
    assert flops[1] < 0.8 * flops[0]  # 0.772 here: merges after blocks 1, 2
