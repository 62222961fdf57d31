"""The ablation configs (paper Tables 1-5): each changes one merger setting
of its reference config, and nothing else.

The references (``configs/sttm/ablations/sttm_*.py``) run a full training,
validation and test iteration in ``test_all_configs.py``. An ablation
differs from its reference only in ``model.backbone.merger`` (checked
here), so what is left to test is that merger: it is set on a copy of the
reference's unmerged backbone, built once per reference, through
``set_merger`` (the path every backbone's ``__init__`` takes), and one
training forward and backward reaches every parameter it adds. This keeps
the suite from building and stepping ViT-B / TimeSformer-B 14 more times.
"""
import copy
import os.path as osp
from functools import lru_cache

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from test_all_configs import FRAMES, FULL, MERGER_ONLY, REPO, SIZE

import mmaction_sttm  # noqa: F401  (registers the modules)
from mmaction_sttm.registry import MODELS


def _reference(path: str) -> str:
    with open(osp.join(REPO, path)) as f:
        text = f.read()
    names = [
        line.split("'")[1] for line in text.splitlines()
        if line.startswith('_base_')
    ]
    assert len(names) == 1, f'{path}: one _base_ expected'
    return osp.normpath(osp.join(osp.dirname(path), names[0]))


def _without_merger(cfg: Config) -> dict:
    out = cfg.to_dict()
    out['model']['backbone'].pop('merger', None)
    return out


@lru_cache(maxsize=None)
def _unmerged_backbone(reference: str) -> torch.nn.Module:
    cfg = Config.fromfile(osp.join(REPO, reference))
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    backbone = dict(cfg.model.backbone, pretrained=None, merger=None)
    return MODELS.build(backbone)


@pytest.mark.parametrize('path', MERGER_ONLY)
def test_ablation_changes_only_the_merger(path):
    reference = _reference(path)
    assert reference in FULL, f'{reference} is not run in full'
    ablation = Config.fromfile(osp.join(REPO, path))
    base = Config.fromfile(osp.join(REPO, reference))
    assert _without_merger(ablation) == _without_merger(base)
    assert ablation.model.backbone.merger != base.model.backbone.merger

    torch.manual_seed(0)
    backbone = copy.deepcopy(_unmerged_backbone(reference))
    backbone.set_merger(ablation.model.backbone.merger,
                        ablation.model.backbone.get('prop_attn', False))
    backbone.train()
    clip = torch.randn(1, 3, FRAMES, SIZE, SIZE)
    features = backbone(clip)
    assert features.shape == (1, ablation.model.backbone.embed_dims)
    features.square().sum().backward()
    # Backward reaches every parameter the merger adds; those of the first
    # merge get a gradient that is not zero. (On 3 x 3 patches a frame, a
    # late merge at a high ratio may have no pair left to merge, so its
    # gradient may be zero; on 224 x 224 frames it is not.)
    first = min(backbone.merge_schedule.mergers, key=int)
    for name, param in backbone.merge_schedule.named_parameters():
        assert param.grad is not None, name
        if name.startswith(f'mergers.{first}.'):
            assert param.grad.abs().sum() > 0, name
