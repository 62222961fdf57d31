"""The model zoo's README, metafile and model index agree with the configs
and with the measured GFLOPs and parameters.

``tools/analysis_tools/check_zoo_readme.py`` measures every README row (several
minutes on a CPU). Here every row is checked for coverage and consistency,
and a subset is measured: all ViT-S rows (baseline, STTM, 13 frames, no meta
filter, both datasets) and TimeSformer + STTM, which go through both
backbone classes, both merge stages and both heads.

The VideoMAE zoo (``configs/videomae/``: ViT-L/16 and ViT-H/16, unmerged,
STTM and ToMe) is checked the same way; its measured subset is ViT-L on
Kinetics-400 unmerged (against VideoMAE's own 597 GFLOPs) and with STTM
(10-20 s on 2 shared cores); the other rows, ToMe's included, are
re-measured by ``check_zoo_readme.py --zoo videomae`` (about 2 minutes).
"""
import glob
import os.path as osp

import pytest
import yaml
from mmengine.config import Config
from stack import torch_at_least
from tool_modules import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
check = load_tool(
    'check_zoo_readme',
    osp.join(REPO, 'tools', 'analysis_tools', 'check_zoo_readme.py'))

ROWS = check.parse_readme()
ZOO_CONFIGS = sorted(
    osp.relpath(p, REPO) for p in glob.glob(
        osp.join(REPO, 'configs', 'sttm', '**', '*.py'), recursive=True))
MEASURED = [
    row for row in ROWS if 'vit-small-p16' in row.config or row.config ==
    'configs/sttm/sttm_timesformer-base-p16_in1k-pre_8xb8-8x8x1-30e_'
    'kinetics400-rgb.py'
]
DATASETS = {'kinetics400': 'Kinetics-400', 'sthv2': 'Something-Something V2'}

VIDEOMAE_README, VIDEOMAE_METAFILE = check.zoo_files('videomae')
VIDEOMAE_ROWS = check.parse_readme(VIDEOMAE_README)
VIDEOMAE_CONFIGS = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(REPO, 'configs', 'videomae', '*.py')))
VIDEOMAE_MEASURED = [
    row for row in VIDEOMAE_ROWS if osp.basename(row.config).startswith((
        'vit-large', 'sttm_vit-large')) and 'kinetics400' in row.config
]


def test_readme_covers_every_zoo_config():
    configs = [row.config for row in ROWS]
    assert len(configs) == len(set(configs)), 'a config is listed twice'
    assert sorted(configs) == ZOO_CONFIGS
    assert len(MEASURED) == 9


def test_three_views_column():
    for row in ROWS:
        assert row.gflops_x3 == pytest.approx(3 * row.gflops, abs=0.011), \
            row.config


def test_metafile_matches_readme_and_configs():
    models = check.parse_metafile()
    assert sorted(models) == ZOO_CONFIGS
    names = [model['Name'] for model in models.values()]
    assert len(names) == len(set(names))
    for row in ROWS:
        model = models[row.config]
        cfg = Config.fromfile(osp.join(REPO, row.config))
        assert model['Name'] == osp.basename(row.config)[:-len('.py')]
        assert model['In Collection'] == 'STTM'
        meta = model['Metadata']
        assert meta['FLOPs'] == f'{row.gflops:.2f}G'
        assert meta['Parameters'] == f'{row.params:.2f}M'
        assert meta['Frames'] == cfg.model.backbone.num_frames
        assert meta['Epochs'] == cfg.train_cfg.max_epochs
        assert meta['Batch Size'] == cfg.train_dataloader.batch_size
        dataset = DATASETS[row.config.split('_')[-1].split('-')[0]]
        assert meta['Training Data'] == dataset
        # Nothing was trained here: no results, no training resources, no
        # weights. The paper's accuracies sit in a custom field under
        # MMAction2's metric names.
        assert 'Results' not in model
        assert 'Training Resources' not in meta
        assert model['Weights'] is None
        assert model['Paper Results']
        for result in model['Paper Results']:
            assert result['Dataset'] == dataset
            assert result['Task'] == 'Action Recognition'
            assert set(
                result['Metrics']) == {'Top 1 Accuracy', 'Top 5 Accuracy'}
            assert all(0 < value < 100 for value in result['Metrics'].values())


def test_model_index_reads_no_accuracy_as_a_result():
    """OpenMMLab's model-index reader (what ``mim`` uses) loads the zoo and
    finds the FLOPs and parameters of every model, and no results."""
    modelindex = pytest.importorskip('modelindex')
    index = modelindex.load(osp.join(REPO, 'model-index.yml'))
    models = list(index.models)
    assert len(models) == len(ZOO_CONFIGS) + len(VIDEOMAE_CONFIGS)
    for model in models:
        assert model.metadata.flops.endswith('G')
        assert model.metadata.parameters.endswith('M')
        assert not model.results


def test_model_index_imports_metafile():
    with open(osp.join(REPO, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    assert index['Import'] == [
        'configs/sttm/metafile.yml', 'configs/videomae/metafile.yml'
    ]
    with open(check.METAFILE) as f:
        collection = yaml.safe_load(f)['Collections'][0]
    assert collection['README'] == 'configs/sttm/README.md'
    with open(VIDEOMAE_METAFILE) as f:
        collection = yaml.safe_load(f)['Collections'][0]
    assert collection['README'] == 'configs/videomae/README.md'


# The README's figures were counted with torch >= 2.4 (the lock). The
# counter gives STTM models about 1% fewer GFLOPs under torch 2.1.2 (ViT-S +
# STTM 37.77 instead of 38.12, not investigated further); the baselines
# agree.
@pytest.mark.skipif(
    not torch_at_least(2, 4),
    reason='zoo GFLOPs were counted with torch >= 2.4 (torch 2.1.2 counts '
    'STTM models about 1% lower)')
@pytest.mark.parametrize('row', MEASURED, ids=lambda row: row.config)
def test_measured_figures(row):
    gflops, params = check.measure(row.config)
    assert check.check_row(row, gflops, params) == []


def test_check_row_reports_mismatches():
    row = check.ZooRow(
        'configs/sttm/x.py', gflops=38.12, gflops_x3=114.36, params=22.71)
    assert check.check_row(row, 38.124, 22.706) == []
    errors = check.check_row(row, 38.2, 22.8)
    assert len(errors) == 3 and 'GFLOPs / view 38.12' in errors[0]


# --- the VideoMAE ViT-L / ViT-H zoo -----------------------------------------


def test_videomae_readme_covers_every_config():
    configs = [row.config for row in VIDEOMAE_ROWS]
    assert len(configs) == len(set(configs)) == 12
    assert sorted(configs) == VIDEOMAE_CONFIGS
    assert len(VIDEOMAE_MEASURED) == 2


def _videomae_columns() -> dict:
    """Config -> the README row's cells by column."""
    rows = {}
    header = None
    with open(VIDEOMAE_README) as f:
        for line in f:
            if not line.startswith('|'):
                header = None
                continue
            cells = [c.strip() for c in line.strip().strip('|').split('|')]
            if header is None:
                header = cells
            elif cells[0].startswith('[config]('):
                config = osp.join('configs', 'videomae', cells[0][9:-1])
                rows[config] = dict(zip(header, cells))
    return rows


def test_videomae_table_arithmetic():
    """Each reduced row's saving against its own unmerged row is the
    column's, and near -33%; GFLOPs per video are per view times views."""
    columns = _videomae_columns()
    rows = {row.config: row for row in VIDEOMAE_ROWS}
    for config, cells in columns.items():
        name = osp.basename(config)
        views = [int(v) for v in cells['test views'].split(' x ')]
        assert views == ([5, 3] if 'kinetics400' in name else [2, 3])
        assert float(cells['GFLOPs / video']) == pytest.approx(
            rows[config].gflops * views[0] * views[1], abs=0.06)
        if not name.startswith(('sttm_', 'tome_')):
            assert cells['vs. unmerged'] == '-'
            continue
        plain = osp.join('configs', 'videomae', name.split('_', 1)[1])
        saving = rows[config].gflops / rows[plain].gflops - 1
        assert cells['vs. unmerged'] == f'{100 * saving:+.1f}%'
        assert -0.34 < saving < -0.32, config


def test_videomae_metafile_matches_readme_and_configs():
    models = check.parse_metafile(VIDEOMAE_METAFILE)
    assert sorted(models) == VIDEOMAE_CONFIGS
    for row in VIDEOMAE_ROWS:
        model = models[row.config]
        cfg = Config.fromfile(osp.join(REPO, row.config))
        assert model['Name'] == osp.basename(row.config)[:-len('.py')]
        assert model['In Collection'] == 'VideoMAE-Large'
        meta = model['Metadata']
        assert meta['FLOPs'] == f'{row.gflops:.2f}G'
        assert meta['Parameters'] == f'{row.params:.2f}M'
        assert meta['Frames'] == cfg.model.backbone.num_frames == 16
        assert meta['Epochs'] == cfg.train_cfg.max_epochs
        assert meta['Batch Size'] == cfg.train_dataloader.batch_size
        dataset = DATASETS[row.config.split('_')[-1].split('-')[0]]
        assert meta['Training Data'] == dataset
        # Nothing was trained: no results, no weights.
        assert 'Results' not in model and 'Paper Results' not in model
        assert model['Weights'] is None


@pytest.mark.skipif(
    not torch_at_least(2, 4),
    reason='zoo GFLOPs were counted with torch >= 2.4 (torch 2.1.2 counts '
    'STTM models about 1% lower)')
@pytest.mark.parametrize('row', VIDEOMAE_MEASURED, ids=lambda row: row.config)
def test_videomae_measured_figures(row):
    gflops, params = check.measure(row.config)
    assert check.check_row(row, gflops, params) == []
    name = osp.basename(row.config)
    if name.startswith('vit-large-p16'):
        # VideoMAE's own figure for ViT-L at 16x224: 597 GFLOPs per view.
        assert gflops == pytest.approx(597, abs=0.5)


def test_check_row_without_three_views_column():
    row = check.ZooRow(
        'configs/videomae/x.py', gflops=597.22, gflops_x3=None, params=304.27)
    assert check.check_row(row, 597.2184, 304.2707) == []
    assert len(check.check_row(row, 598.0, 304.2707)) == 1
