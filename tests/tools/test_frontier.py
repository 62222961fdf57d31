"""The frontier tool end to end on tiny models and videos: plan, dev runs,
the dev choice, held-out runs and the report, against direct scoring."""
import json
import os.path as osp

import pytest
import torch
from tool_modules import load_tool

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _tool():
    return load_tool('frontier',
                     osp.join(ROOT, 'tools', 'analysis_tools', 'frontier.py'))


@pytest.fixture(scope='module')
def frontier():
    return _tool()


def test_the_registered_protocol_loads(frontier):
    protocol = frontier.load_protocol(
        osp.join(ROOT, 'configs', 'synthetic', 'frontier_videomae'))
    assert [r.name for r in protocol.reducers] == [
        'STTM', 'ToMe', 'EViT', 'PiToMe', 'VidTLDR', 'UniformPool',
        'RandomDrop'
    ]
    assert len(protocol.reducer('ToMe').readings) == 4
    assert protocol.splits == ('test', 'shifted') and len(protocol.seeds) == 10


def test_a_wrong_key_is_one_line(frontier, tmp_path):
    (tmp_path / 'protocol.py').write_text('protocol = dict(title=1, outt=2)')
    with pytest.raises(ValueError, match=r"unknown keys \['outt'\]"):
        frontier.load_protocol(str(tmp_path))


def _setup(tmp_path, tiny_dataset):
    from mmaction.utils import register_all_modules
    from mmengine.config import Config

    import mmaction_sttm  # noqa: F401
    from mmaction_sttm.registry import MODELS
    register_all_modules()
    base = osp.join(
        ROOT, 'configs', 'synthetic', 'study',
        'study_vit-tiny-p8_scratch_1xb32-8x2x1-12e_synthetic-'
        'motion-rgb.py')
    config = tmp_path / 'model.py'
    config.write_text(
        f'_base_ = [{base!r}]\n'
        'model = dict(backbone=dict(embed_dims=32, num_heads=2), '
        'cls_head=dict(num_classes=2, in_channels=32))\n')
    cfg = Config.fromfile(str(config))
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = MODELS.build(cfg.model)
        model.init_weights()
        torch.save(
            dict(state_dict=model.state_dict()),
            str(tmp_path / f'seed{seed}.pth'))
    val = (osp.join(tiny_dataset,
                    'val_list_videos.txt'), osp.join(tiny_dataset, 'videos'))
    one = dict(layers=(1, 2), stages=('spatial', 'spatiotemporal'))
    (tmp_path / 'study').mkdir()
    (tmp_path / 'study' / 'protocol.py').write_text(
        repr(
            dict(
                title='tiny',
                out=str(tmp_path / 'out'),
                model_config=str(config),
                checkpoint='seed{seed}.pth',
                data=dict(dev=val, test=val, shifted=val),
                splits=('test', 'shifted'),
                seeds=(0, 1),
                points=(0.8, 0.6),
                tolerance=0.02,
                shape=(1, 3, 8, 32, 32),
                reducers=dict(
                    STTM=dict(
                        merger=dict(type='STTM', fuse_init='identity', **one),
                        max_ratio=0.95),
                    ToMe=dict(
                        merger=dict(
                            type='ToMe',
                            layers=(1, 2, 3),
                            stages=('spatiotemporal', ) * 3),
                        max_ratio=0.5,
                        readings=dict(
                            keys=dict(merger=dict(metric='keys')),
                            prop=dict(prop_attn=True))),
                    RandomDrop=dict(
                        merger=dict(type='RandomDrop', **one),
                        max_ratio=0.95)),
                primary='STTM',
                floor='RandomDrop',
                alpha=0.05)).join(['protocol = ', '\n']))
    return str(tmp_path / 'study')


def test_plan_run_choose_and_report(frontier, tmp_path, tiny_dataset):
    study = _setup(tmp_path, tiny_dataset)
    frontier.main(['plan', '--config-dir', study])
    out = tmp_path / 'out'
    plan = json.loads((out / 'plan.json').read_text())
    for readings in plan['reducers'].values():
        for entries in readings.values():
            for entry in entries:
                assert entry['within']
                assert abs(entry['fraction'] / entry['point'] - 1) <= 0.02
    protocol = frontier.load_protocol(study)
    # Held-out runs wait for the dev choice.
    with pytest.raises(RuntimeError, match='dev record'):
        frontier.run(protocol, 'test', str(tmp_path))
    frontier.main([
        'run', '--config-dir', study, '--phase', 'dev', '--source',
        str(tmp_path)
    ])
    for reading in ('keys', 'prop'):
        assert (out / 'dev' / 'ToMe' / reading / 'seed1.json').exists()
    frontier.main([
        'run', '--config-dir', study, '--phase', 'test', '--source',
        str(tmp_path)
    ])
    chosen = frontier.chosen_readings(protocol, str(out))
    tome = list((out / 'test' / 'ToMe').iterdir())
    assert [p.name for p in tome] == [chosen['ToMe']]
    record = json.loads(
        (out / 'test' / 'STTM' / 'default' / 'seed0.json').read_text())
    assert record['checkpoint'] == 'seed0.pth'
    assert len(record['checkpoint_sha256']) == 64
    assert [p['point'] for p in record['points']] == [0.8, 0.6]
    # The baseline record is the unmerged model scored directly.
    from mmengine.config import Config

    from mmaction_sttm.registry import MODELS
    cfg = Config.fromfile(str(tmp_path / 'model.py'))
    model = MODELS.build(cfg.model)
    model.load_state_dict(
        torch.load(str(tmp_path / 'seed0.pth'))['state_dict'])
    batches = frontier.load_split(cfg, *protocol.data['test'])
    direct = frontier.score(model, batches)
    base = json.loads((out / 'test' / 'baseline' / 'seed0.json').read_text())
    assert base['splits']['test'] == direct
    assert len(direct['pred'].split()) == 4
    frontier.main(['report', '--config-dir', study])
    text = (out / 'test.md').read_text()
    assert 'ToMe minus STTM' in text and 'ToMe minus RandomDrop' in text
    assert (out / 'frontier_shifted.png').exists()
    assert 'Chosen: STTM default' in (out / 'dev.md').read_text()


# -- the fine-tuned frontier (regime b) ---------------------------------------


def test_the_registered_finetuned_protocol_loads(frontier):
    protocol = frontier.load_protocol(
        osp.join(ROOT, 'configs', 'synthetic', 'frontier_videomae_finetuned'))
    ft = protocol.finetune
    assert protocol.seeds == (0, 1, 2, 100, 101, 102)
    assert ft.backbones == (0, 1, 2, 0, 1, 2)
    assert ft.backbone_of(protocol.seeds, 101) == 1
    assert ft.backbone_of(protocol.seeds, 4) == 4  # a dev run
    assert set(ft.dev_backbones).isdisjoint(ft.backbones)
    assert frontier.all_points(protocol) == (0.67, 0.5, 0.4)
    assert protocol.reducer('STTM').merger['fuse_init'] == 'orthogonal'


def test_finetuned_protocol_errors_are_one_line(frontier, tmp_path):
    base = osp.join(ROOT, 'configs', 'synthetic',
                    'frontier_videomae_finetuned', 'protocol.py')
    (tmp_path / 'protocol.py').write_text(
        f'_base_ = [{base!r}]\n'
        'protocol = dict(finetune=dict(backbones=(0, 1)))\n')
    with pytest.raises(ValueError, match='backbones has 2 entries for 6'):
        frontier.load_protocol(str(tmp_path))


def _record(reducer, seed, dev, points=None):
    record = dict(reducer=reducer, seed=seed)
    if points is None:
        record['splits'] = dict(dev=dict(top1=dev))
    else:
        record['reading'] = 'default'
        record['points'] = [
            dict(point=p, splits=dict(dev=dict(top1=v)))
            for p, v in zip(points, dev)
        ]
    return record


def test_the_deepest_point_is_the_first_where_the_floor_loses_3(
        frontier, tmp_path):
    import sys
    import types
    sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis_tools'))
    from frontier_finetune import deep_point
    protocol = frontier.load_protocol(
        osp.join(ROOT, 'configs', 'synthetic', 'frontier_videomae_finetuned'))
    ft = protocol.finetune
    ft = types.SimpleNamespace(**dict(ft.__dict__, deep_points=(0.5, 0.4)))
    protocol = types.SimpleNamespace(
        finetune=ft, floor='RandomDrop', reducer=protocol.reducer)
    out = tmp_path / 'out'
    for seed, (base, floor) in zip(ft.dev_seeds,
                                   ((80, (79, 76)), (80, (76, 78)))):
        for name, rec in (('baseline/', _record('baseline', seed, base)),
                          ('RandomDrop/default/',
                           _record('RandomDrop', seed, floor, (0.5, 0.4)))):
            path = out / 'dev' / name / f'seed{seed}.json'
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(rec))
    # Mean losses: 0.5 -> -2.5 (not enough), 0.4 -> -3.0 (chosen).
    point, lines = deep_point(protocol, str(out))
    assert point == 0.4 and '| 0.5 | -1.0, -4.0 | -2.50 |' in lines
    ft.__dict__['floor_loss'] = 2.0
    assert deep_point(protocol, str(out))[0] == 0.5
    ft.__dict__['floor_loss'] = 9.0  # none loses 9: the deepest candidate
    assert deep_point(protocol, str(out))[0] == 0.4


def test_finetuned_run_and_report(frontier, tmp_path, tiny_dataset):
    """Dev runs, the deepest point, one held-out seed, the report; each
    record's scores are its checkpoint's, scored directly."""
    from mmaction.utils import register_all_modules
    from mmengine.config import Config

    import mmaction_sttm  # noqa: F401
    from mmaction_sttm.registry import MODELS
    register_all_modules()
    base = osp.join(
        ROOT, 'configs', 'synthetic', 'videomae_study', 'finetune',
        'vit_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py')
    config = tmp_path / 'model.py'
    config.write_text(
        f'_base_ = [{base!r}]\n'
        'model = dict(backbone=dict(embed_dims=32, num_heads=2), '
        'cls_head=dict(num_classes=2, in_channels=32))\n'
        'train_cfg = dict(max_epochs=1, val_interval=1)\n'
        'train_dataloader = dict(batch_size=4)\n')
    cfg = Config.fromfile(str(config))
    cfg.model.backbone.pop('init_cfg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    for backbone in (0, 1):
        torch.save(
            dict(state_dict=model.state_dict()),
            str(tmp_path / f'pre{backbone}.pth'))
    train = (osp.join(tiny_dataset, 'train_list_videos.txt'),
             osp.join(tiny_dataset, 'videos'))
    val = (osp.join(tiny_dataset,
                    'val_list_videos.txt'), osp.join(tiny_dataset, 'videos'))
    one = dict(layers=(1, 2), stages=('spatial', 'spatiotemporal'))
    (tmp_path / 'study').mkdir()
    (tmp_path / 'study' / 'protocol.py').write_text(
        repr(
            dict(
                title='tiny b',
                out=str(tmp_path / 'out'),
                model_config=str(config),
                data=dict(dev=val, test=val, shifted=val),
                splits=('test', 'shifted'),
                seeds=(0, 1),
                finetune=dict(
                    pretrained='pre{backbone}.pth',
                    backbones=(0, 1),
                    train=train,
                    train_subset=val,
                    dev_seeds=(5, ),
                    dev_backbones=(0, ),
                    deep_points=(0.6, ),
                    floor_loss=3.0,
                    work_dir=str(tmp_path / 'work')),
                points=(),
                tolerance=0.02,
                shape=(1, 3, 8, 32, 32),
                reducers=dict(
                    STTM=dict(merger=dict(type='STTM', **one), max_ratio=0.95),
                    RandomDrop=dict(
                        merger=dict(type='RandomDrop', **one),
                        max_ratio=0.95)),
                primary='STTM',
                floor='RandomDrop',
                alpha=0.05)).join(['protocol = ', '\n']))
    study = str(tmp_path / 'study')
    frontier.main(['plan', '--config-dir', study])
    protocol = frontier.load_protocol(study)
    with pytest.raises(RuntimeError, match='dev record'):
        frontier.run(protocol, 'test', str(tmp_path))
    for phase in ('dev', 'test'):
        frontier.main([
            'run', '--config-dir', study, '--phase', phase, '--source',
            str(tmp_path)
        ])
    out = tmp_path / 'out'
    assert not (out / 'dev' / 'STTM').exists()  # dev: the floor only
    record = json.loads(
        (out / 'test' / 'STTM' / 'default' / 'seed0.json').read_text())
    assert record['backbone'] == 0 and record['pretrained'] == 'pre0.pth'
    (entry, ) = record['points']
    assert entry['point'] == 0.6
    assert set(entry['splits']) == {'train', 'test', 'shifted'}
    assert '$SOURCE/pre0.pth' in entry['command']
    # The run's config has the plan's merger; its checkpoint scores as
    # recorded.
    wd = tmp_path / 'work' / 'test' / 'STTM' / '0.6' / 'seed0'
    run_cfg = Config.fromfile(str(wd / 'config.py'))
    plan = json.loads((out / 'plan.json').read_text())
    (planned, ) = [
        e for e in plan['reducers']['STTM']['default'] if e['point'] == 0.6
    ]
    ratio = run_cfg.model.backbone.merger.ratio
    assert (list(ratio) if isinstance(ratio, tuple) else ratio) == \
        planned['ratio']
    run_cfg.model.backbone.pop('init_cfg')
    model = MODELS.build(run_cfg.model)
    ckpt = (wd / 'last_checkpoint').read_text().strip()
    model.load_state_dict(torch.load(ckpt, weights_only=False)['state_dict'])
    direct = frontier.score(model, frontier.load_split(run_cfg, *val))
    assert entry['splits']['test'] == direct
    frontier.main(['report', '--config-dir', study])
    assert 'Chosen deepest point: 0.6' in (out / 'dev.md').read_text()
    text = (out / 'test.md').read_text()
    assert 'RandomDrop minus STTM' in text and 'train top-1' in text
