"""mmaction_sttm.models.catalog: every merging backbone is listed once, and
each entry says true things about its family."""
import pytest
import torch

import mmaction_sttm
from mmaction_sttm.conversion.weights import DST_FORMATS
from mmaction_sttm.models.backbones import MergingBackbone
from mmaction_sttm.models.catalog import (FAMILIES, TINY_DEPTH, TINY_PATCH,
                                          check_merging_backbone, family)
from mmaction_sttm.registry import MODELS

mmaction_sttm.register_all_modules()


def test_every_registered_backbone_is_listed_once():
    """A backbone registered without a catalog entry (or listed twice)
    would be left out of the tests and tools that read the catalog."""
    registered = {
        cls
        for cls in MODELS.module_dict.values()
        if isinstance(cls, type) and issubclass(cls, MergingBackbone)
        and cls.__module__.startswith('mmaction_sttm.')
        and not hasattr(cls, 'deprecated_alias_of')  # old names, see below
    }
    listed = [f.backbone for f in FAMILIES]
    assert len(listed) == len(set(listed))
    assert set(listed) == registered
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize('entry', FAMILIES, ids=lambda f: f.name)
def test_entry(entry):
    assert MODELS.get(entry.type) is entry.backbone
    if entry.replaces is not None:
        # Same arguments and parameter names: a config of MMAction2's
        # backbone runs as ours.
        assert issubclass(entry.backbone, MODELS.get(entry.replaces))
    if entry.converter is not None:
        assert entry.converter.dst in DST_FORMATS
    # The tiny model is what the catalog says: its depth, patch size and
    # width, and it runs on a clip of the given frames and size.
    torch.manual_seed(0)
    model = MODELS.build(entry.tiny(dims=16, frames=2, size=16)).eval()
    assert isinstance(model, entry.backbone)
    assert model.num_blocks == TINY_DEPTH
    assert tuple(model.geometry.patch_size) == (TINY_PATCH, TINY_PATCH)
    with torch.no_grad():
        out = model(torch.randn(1, 3, 2, 16, 16))
    assert out.shape[0] == 1 and out.shape[1] == 16


def test_family_by_name():
    assert family('timesformer').type == 'MergingTimeSformer'
    with pytest.raises(KeyError, match="'vit'"):
        family('nope')


@pytest.mark.parametrize('entry', FAMILIES, ids=lambda f: f.name)
@pytest.mark.parametrize('key', ['merger', 'reducer'])
def test_a_backbone_that_cannot_merge_is_refused(entry, key):
    """No silent no-op: a ``merger`` / ``reducer`` on a backbone that
    cannot take it fails in one line naming the class to use; on the
    family's own merging class it is accepted."""
    setting = dict(type='STTM') if key == 'merger' else dict(type='RLT')
    check_merging_backbone(dict(entry.tiny(), **{key: setting}))
    check_merging_backbone(dict(entry.tiny(), merger=None))  # unmerged: ok
    if entry.replaces:
        for kind in (entry.replaces, f'mmaction.{entry.replaces}'):
            with pytest.raises(ValueError) as info:
                check_merging_backbone(dict(type=kind, **{key: setting}))
            assert str(info.value) == (
                f'model.backbone.{key}: {entry.replaces} cannot merge; '
                f"use type='{entry.type}'")
    # A backbone with no merging twin: the message lists the classes.
    with pytest.raises(
            ValueError,
            match=f'ResNet3d cannot merge; the '
            f'merging backbones are .*{entry.type}'):
        check_merging_backbone(dict(type='ResNet3d', **{key: setting}))
    # An unregistered type is left to the builder, which names the typo.
    check_merging_backbone(dict(type='ResNet3D_typo', **{key: setting}))


def test_each_family_names_its_converter_command():
    """The converter command comes from the catalog entry: a family with a
    converter of its own gets its --dst and its options, read from the
    backbone config; the tools' error helper gives the same command."""
    from mmaction_sttm import tooling
    from mmaction_sttm.models.catalog import Converter
    for entry in FAMILIES:
        backbone = dict(entry.tiny(dims=192), num_frames=8)
        command = tooling.converter_command(backbone, 'w.pth')
        if entry.converter is None:
            assert command is None
            continue
        assert command == entry.converter.command(backbone, 'w.pth')
        assert command.startswith('python tools/convert_weights.py '
                                  'deit_tiny_patch16_224.pth w.pth')
        assert f'--dst {entry.converter.dst}' in command
    videomae = family('videomae').converter
    assert videomae.options(dict(num_frames=8, tubelet_size=2)) == [
        '--num-frames 8', '--tubelet-size 2', '--videomae-pos-embed sincos'
    ]
    custom = Converter('x', lambda b: [f'--depth {b["depth"]}'], {1: 's.pth'})
    assert custom.command(dict(embed_dims=1, depth=3), 'o.pth') == \
        'python tools/convert_weights.py s.pth o.pth --src-format timm ' \
        '--dst x --depth 3'
