"""The demo study's configs: the protocol names each variant once, each is
the demo's config with the two processes' batch in one, and ToMe runs at
STTM's GFLOPs (within 2%), below the baseline's."""
import os.path as osp

import pytest
from mmengine.config import Config
from sttm_study.variants import count_complexity, load_variants

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join('configs', 'synthetic', 'demo_study')
PROTOCOL = Config.fromfile(osp.join(ROOT, CONFIG_DIR, 'protocol.py')).protocol


def test_protocol_names_every_variant_once():
    variants = load_variants(ROOT, CONFIG_DIR, ['scratch'])
    assert sorted(v.name for v in variants) == sorted(PROTOCOL.variants)
    assert {PROTOCOL.baseline, PROTOCOL.primary,
            *PROTOCOL.peers} == set(PROTOCOL.variants)
    assert PROTOCOL.regime == 'scratch' and len(PROTOCOL.seeds) >= 5


@pytest.mark.parametrize('demo', [
    'vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py',
    'sttm_vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py',
    'tome_vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py'
])
def test_the_demos_recipe_in_one_process(demo):
    mine = Config.fromfile(
        osp.join(ROOT, CONFIG_DIR, 'scratch', demo.replace('2xb8', '1xb16')))
    theirs = Config.fromfile(osp.join(ROOT, 'configs', 'synthetic', demo))
    assert mine.train_dataloader.batch_size == \
        2 * theirs.train_dataloader.batch_size
    assert mine.model == theirs.model
    assert mine.param_scheduler == theirs.param_scheduler
    assert mine.optim_wrapper == theirs.optim_wrapper
    assert mine.train_cfg == theirs.train_cfg


def test_peers_at_equal_gflops():
    gflops = {}
    for variant in load_variants(ROOT, CONFIG_DIR, ['scratch']):
        count_complexity(ROOT, variant)
        gflops[variant.name] = variant.gflops
    assert gflops[PROTOCOL.baseline] == pytest.approx(0.01642, abs=1e-5)
    assert gflops[PROTOCOL.primary] == pytest.approx(0.01267, abs=1e-5)
    for peer in PROTOCOL.peers:
        assert gflops[peer] == pytest.approx(
            gflops[PROTOCOL.primary], rel=0.02)
