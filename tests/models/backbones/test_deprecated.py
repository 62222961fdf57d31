"""The backbones' registry names of earlier releases still build, with a
``FutureWarning`` naming the new name, into the new class."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from tiny_backbones import BACKBONES

import mmaction_sttm  # noqa: F401
from mmaction_sttm.models.backbones.deprecated import RENAMED
from mmaction_sttm.models.catalog import FAMILIES
from mmaction_sttm.registry import MODELS

REPO = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
MERGER = dict(type='STTM', layers=(1, 2), ratio=0.5)
BY_CLASS = {f.backbone: f for f in FAMILIES}


@pytest.mark.parametrize('old', sorted(RENAMED))
def test_old_name_builds_the_new_class_with_a_warning(old):
    new = RENAMED[old]
    cfg = dict(BACKBONES[BY_CLASS[new].name], merger=MERGER)
    torch.manual_seed(0)
    expected = MODELS.build(cfg).eval()
    with pytest.warns(
            FutureWarning, match=f"'{old}' is deprecated.*"
            f"'{new.__name__}'"):
        model = MODELS.build(dict(cfg, type=old)).eval()
    assert isinstance(model, new)
    # Same module: the new class's checkpoint loads strictly, and the
    # outputs agree.
    model.load_state_dict(expected.state_dict())
    clip = torch.randn(
        1, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(clip), expected(clip), rtol=0, atol=0)


def test_a_config_written_with_an_old_name_still_builds():
    cfg = Config.fromfile(
        osp.join(
            REPO,
            'configs',
            'synthetic',
            'sttm_timesformer-tiny_scratch_2xb8-8x2x1-6e_synthetic-motion-rgb.py'  # noqa: E501
        ))
    assert cfg.model.backbone.type == 'MergingTimeSformer'
    cfg.model.backbone.type = 'TimeSformerSTTM'
    with pytest.warns(FutureWarning, match="'TimeSformerSTTM' is deprecated"):
        model = MODELS.build(cfg.model)
    assert type(model.backbone).__name__ == 'TimeSformerSTTM'
    assert isinstance(model.backbone, RENAMED['TimeSformerSTTM'])
