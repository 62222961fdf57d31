"""The confirmatory study's configs: every variant the protocol names
exists and builds, the model has a CLS token (so STTM's meta filter ranks by
the CLS query's attention), and every peer is within 2% of STTM's GFLOPs."""
import os.path as osp

import pytest
from mmengine.config import Config
from sttm_study.variants import count_complexity, load_variants

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join('configs', 'synthetic', 'confirm')
PROTOCOL = Config.fromfile(osp.join(ROOT, CONFIG_DIR, 'protocol.py')).protocol


def _named():
    names = [PROTOCOL.baseline, PROTOCOL.primary] + list(PROTOCOL.peers)
    for readings in PROTOCOL.peer_choices.values():
        names += list(readings)
    return names


def test_protocol_names_every_variant_once():
    variants = load_variants(ROOT, CONFIG_DIR, ['finetune'])
    assert sorted(v.name for v in variants) == sorted(_named())
    assert len(load_variants(ROOT, CONFIG_DIR, ['pretrain'])) == 1


@pytest.fixture(scope='module')
def gflops():
    out = {}
    for variant in load_variants(ROOT, CONFIG_DIR, ['finetune']):
        count_complexity(ROOT, variant)
        out[variant.name] = variant.gflops
    return out


def test_peers_at_equal_gflops(gflops):
    primary = gflops[PROTOCOL.primary]
    # STTM at ratio 0.7 saves about a third.
    assert primary / gflops[PROTOCOL.baseline] == pytest.approx(
        0.671, abs=0.01)
    for name in set(_named()) - {PROTOCOL.baseline, PROTOCOL.primary}:
        assert gflops[name] == pytest.approx(primary, rel=0.02), name


def test_the_model_has_a_cls_token_and_sttm_uses_its_attention():
    from mmengine.registry import init_default_scope

    import mmaction_sttm  # noqa: F401
    from mmaction_sttm.registry import MODELS
    init_default_scope('mmaction')
    (variant, ) = load_variants(ROOT, CONFIG_DIR, ['finetune'],
                                [PROTOCOL.primary])
    cfg = Config.fromfile(osp.join(ROOT, variant.config))
    cfg.model.backbone.pop('init_cfg')
    model = MODELS.build(cfg.model)
    assert model.backbone.geometry.has_cls
    mergers = list(model.backbone.merge_schedule.modules())
    sttm = [m for m in mergers if type(m).__name__ == 'STTM']
    assert len(sttm) == 2
    assert all(m.needs == ('cls_attn', ) for m in sttm)
