"""The VideoMAE-style study (issue 34): its configs and protocol, the
shifted split, per-video predictions, the collapse table, and which splits
an ablation is scored on."""
import dataclasses
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from mmengine.config import Config
from sttm_study import report
from sttm_study.confirm import eval_splits
from sttm_study.data import SHIFT, make_study_data
from sttm_study.protocol import load_protocol
from sttm_study.records import RunRecord
from sttm_study.runner import compact_predictions
from sttm_study.variants import count_complexity, load_variants

from mmaction_sttm.generators import SyntheticSpec, render_video

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join('configs', 'synthetic', 'videomae_study')
PROTOCOL = load_protocol(osp.join(ROOT, CONFIG_DIR, 'protocol.py'))


def test_protocol_names_every_variant_once():
    variants = load_variants(ROOT, CONFIG_DIR, ['finetune'])
    names = sorted(v.name for v in variants)
    assert names == sorted(PROTOCOL.variants + PROTOCOL.ablations)
    assert len(set(names)) == len(names)
    named = {PROTOCOL.baseline, PROTOCOL.primary}
    for comparison in PROTOCOL.comparisons:
        named |= {comparison['primary'], *comparison['others']}
    assert named <= set(PROTOCOL.variants)
    assert len(PROTOCOL.seeds) >= 10 and PROTOCOL.pretrain_seed is None
    assert len(load_variants(ROOT, CONFIG_DIR, ['pretrain'])) == 1


def test_the_table_is_at_equal_gflops():
    """Every phase-1 variant removes a third of the baseline's GFLOPs,
    within 1% of one another."""
    gflops = {}
    for variant in load_variants(ROOT, CONFIG_DIR, ['finetune'],
                                 PROTOCOL.variants):
        count_complexity(ROOT, variant)
        gflops[variant.name] = variant.gflops
    base = gflops.pop('vit')
    for name, value in gflops.items():
        assert value / base == pytest.approx(0.667, abs=0.01), name


def test_an_ablation_changes_one_thing():
    """Each ablation's config differs from the primary's in the merger
    field, or the schedule, it names, and in nothing else of the model."""

    def model(name):
        (variant, ) = load_variants(ROOT, CONFIG_DIR, ['finetune'], [name])
        return Config.fromfile(osp.join(ROOT, variant.config))

    primary = model(PROTOCOL.primary)
    changed = {}
    for name in PROTOCOL.ablations:
        if name == 'vit-12e':
            continue
        cfg = model(name)
        merger, ref = cfg.model.backbone.merger, primary.model.backbone.merger
        keys = {
            k
            for k in set(merger) | set(ref) if merger.get(k) != ref.get(k)
        }
        schedule = cfg.train_cfg.max_epochs != primary.train_cfg.max_epochs
        rest = {k: v for k, v in cfg.model.backbone.items() if k != 'merger'}
        ref_rest = {
            k: v
            for k, v in primary.model.backbone.items() if k != 'merger'
        }
        # The pooling ablation (amendment 6) changes the backbone's
        # token_pool instead of the merger.
        pool = {
            k
            for k in set(rest) | set(ref_rest)
            if rest.get(k) != ref_rest.get(k)
        }
        changed[name] = (keys | pool, schedule)
        assert len(keys) + len(pool) + schedule == 1, (name, keys, pool)
        assert pool <= {'token_pool'}
    assert changed['sttm-orthogonal-layers13-r0.7'][0] == {'layers'}
    assert changed['sttm-orthogonal-plainpool-r0.7'][0] == {'token_pool'}
    assert changed['sttm-orthogonal-r0.7-12e'][1]


def test_ablations_never_touch_the_test_split():
    assert eval_splits(PROTOCOL, 'test', 'vit') == ('dev', 'test', 'shifted')
    for name in PROTOCOL.ablations:
        assert eval_splits(PROTOCOL, 'test', name) == ('dev', 'shifted')
    assert eval_splits(PROTOCOL, 'dev', 'vit') == ('dev', )
    assert eval_splits(
        dataclasses.replace(PROTOCOL, shifted_per_class=0), 'test',
        'vit') == ('dev', 'test')


def test_shift_fields_change_only_what_they_name():
    """The defaults give the videos of a spec without the new fields (the
    same random draws); each shift field changes the frames."""

    def video(**kwargs):
        return render_video(3, np.random.default_rng(5), 32, 8, **kwargs)

    base = video()
    assert np.array_equal(
        base, video(background='waves', object_scale=1.0, speed_scale=1.0))
    for kwargs in (dict(background='checker'), dict(object_scale=0.75),
                   dict(speed_scale=1.25)):
        assert not np.array_equal(base, video(**kwargs)), kwargs
    # Smaller objects cover fewer pixels of the frame: the marked object's
    # white core shrinks with its radius.
    white = [(video(object_scale=s, num_distractors=0) > 250).all(-1).sum()
             for s in (1.0, 0.5)]
    assert white[1] < white[0] / 2
    with pytest.raises(ValueError, match='background'):
        SyntheticSpec(background='plain').validate()
    with pytest.raises(ValueError, match='speed_scale'):
        SyntheticSpec(speed_scale=0).validate()


def test_the_shifted_split_is_made_apart(tmp_path):
    data = make_study_data(
        str(tmp_path),
        smoke=True,
        shape=False,
        test_per_class=1,
        shifted_per_class=1)
    lists = data.lists('shifted')
    assert lists['ann_file'].endswith('shifted_list_videos.txt')
    with open(lists['ann_file']) as f:
        labels = sorted(int(line.split()[1]) for line in f)
    assert labels == list(range(10))
    assert data.test != data.shifted
    assert SHIFT['background'] == 'checker'
    with pytest.raises(ValueError, match='asks for 20'):
        make_study_data(
            str(tmp_path), smoke=True, shape=False, shifted_per_class=2)


@pytest.mark.parametrize('layout', ['1.1', '1.2'])
def test_compact_predictions(tmp_path, layout):
    scores = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    labels = [0, 1]
    if layout == '1.1':  # MMAction2 1.1: LabelData dicts
        samples = [
            dict(
                pred_scores=dict(item=s),
                gt_labels=dict(item=torch.tensor([y])))
            for s, y in zip(scores, labels)
        ]
    else:
        samples = [
            dict(pred_score=s, gt_label=torch.tensor([y]))
            for s, y in zip(scores, labels)
        ]
    path = tmp_path / 'p.pkl'
    path.write_bytes(pickle.dumps(samples))
    assert compact_predictions(str(path)) == dict(
        label='0 1', pred='0 2', p_true='700 300')


def _run(variant, seed, metrics):
    """A run record with only what the tables read."""
    return RunRecord(
        variant=variant,
        regime='finetune',
        seed=seed,
        config='c.py',
        commit='a' * 40,
        dirty=False,
        metrics=metrics)


def _record(name, seed, dev, shifted):
    return _run(name, seed,
                dict(dev=dict(top1=dev), shifted=dict(top1=shifted)))


def test_robustness_table_counts_collapses_against_the_same_seed():
    records = [_record('vit', s, 80.0 + s, 70.0 + s) for s in range(4)]
    # Seed 2 falls 6 points below its own baseline on shifted (a collapse),
    # seed 3 is 4.5 below (not one); seed 0 is the worst on dev.
    records += [
        _record('sttm', 0, 79.0, 70.0),
        _record('sttm', 1, 81.0, 71),
        _record('sttm', 2, 82.0, 66.0),
        _record('sttm', 3, 83.0, 68.5)
    ]
    lines = report.robustness_table(
        records, 'vit', ['vit', 'sttm'], ['dev', 'shifted'], margin=5.0)
    (row, ) = [line for line in lines if line.startswith('| sttm |')]
    cells = [c.strip() for c in row.strip('|').split('|')]
    assert cells[2] == '79.00 (0)' and cells[3] == '-0.25'
    assert cells[4] == '0 / 4'
    assert cells[6] == '66.00 (2)' and cells[8] == '1 / 4'
    assert cells[7] == f'{np.mean([0, 0, -6, -4.5]):+.2f}'


def test_class_table_from_predictions():
    preds = dict(label='0 0 1 1', pred='0 1 1 1', p_true='900 100 800 700')
    other = dict(label='0 0 1 1', pred='0 0 0 0', p_true='900 900 1 1')
    records = [
        _run('a', 0, dict(test=dict(top1=75.0, predictions=preds))),
        _run('a', 1, dict(test=dict(top1=50.0, predictions=other))),
        _run('b', 0, dict(test=dict(top1=1.0)))
    ]
    lines = report.class_table(records, ['a', 'b'], 'test', ['x', 'y'])
    # Class x: 50% then 100%; class y: 100% then 0%. No predictions for b.
    assert lines[2:] == ['| a | 2 | 75.0 | 50.0 |']
    assert report.class_table(records, ['b'], 'test', ['x', 'y']) == []


def test_phase_3_fine_tunes_on_the_shifted_scene(tmp_path):
    """Phase 3 (the tester's design): phase 1's variants, unchanged, on
    the motion task rendered with SHIFT at 56 pixels (train, dev and test
    alike); the shape pre-training keeps the study's scene."""
    import decord

    config_dir = osp.join('configs', 'synthetic', 'videomae_shifted_study')
    protocol = load_protocol(osp.join(ROOT, config_dir, 'protocol.py'))
    assert protocol.variants == PROTOCOL.variants
    assert {
        k: v
        for k, v in protocol.scene.items() if k in SHIFT
    } == SHIFT and protocol.scene['resolution'] == 56
    phase1 = {
        v.name: Config.fromfile(osp.join(ROOT, v.config)).model
        for v in load_variants(ROOT, CONFIG_DIR, ['finetune'],
                               PROTOCOL.variants)
    }
    for variant in load_variants(ROOT, config_dir, ['finetune']):
        model = Config.fromfile(osp.join(ROOT, variant.config)).model
        assert model == phase1[variant.name]
    data = make_study_data(
        str(tmp_path),
        smoke=True,
        test_per_class=1,
        scene=dict(protocol.scene))
    for split in ('train', 'dev', 'test'):
        with open(data.lists(split)['ann_file']) as f:
            name = f.readline().split()[0]
        video = osp.join(data.lists(split)['video'], name)
        assert decord.VideoReader(video)[0].shape == (56, 56, 3), split
    with open(osp.join(data.shape, 'train_list_videos.txt')) as f:
        name = f.readline().split()[0]
    assert decord.VideoReader(osp.join(data.shape, 'videos',
                                       name))[0].shape == (32, 32, 3)


def test_ablation_table_pairs_on_the_ablations_seeds():
    records = [_record('ref', s, 80.0 + s, 50.0) for s in range(4)]
    # Two points above the reference on dev on seeds 0-2 (seed 3 not run),
    # level on shifted except seed 2.
    records += [
        _record('abl', s, 82.0 + s, 50.0 + (s == 2) * 3) for s in range(3)
    ]
    records += [_record('single', 0, 1.0, 1.0)]  # one seed: left out
    lines = report.ablation_table(records, 'ref', ['abl', 'single'],
                                  ['dev', 'shifted'])
    (row, ) = lines[2:]
    cells = [c.strip() for c in row.strip('|').split('|')]
    assert cells[:3] == ['abl', '0, 1, 2', '+2.00']
    assert cells[4] == '+1.00'
