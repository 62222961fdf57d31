"""The model zoo's README, metafile and model index agree with the configs
and with the measured GFLOPs and parameters.

``tools/analysis_tools/check_zoo_readme.py`` measures every README row (several
minutes on a CPU). Here every row is checked for coverage and consistency,
and a subset is measured: all ViT-S rows (baseline, STTM, 13 frames, no meta
filter, both datasets) and TimeSformer + STTM, which go through both
backbone classes, both merge stages and both heads.
"""
import glob
import importlib.util
import os.path as osp

import pytest
import yaml
from mmengine.config import Config
from stack import torch_at_least

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
_spec = importlib.util.spec_from_file_location(
    'check_zoo_readme',
    osp.join(REPO, 'tools', 'analysis_tools', 'check_zoo_readme.py'))
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)

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
    assert len(models) == len(ZOO_CONFIGS)
    for model in models:
        assert model.metadata.flops.endswith('G')
        assert model.metadata.parameters.endswith('M')
        assert not model.results


def test_model_index_imports_metafile():
    with open(osp.join(REPO, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    assert 'configs/sttm/metafile.yml' in index['Import']
    with open(check.METAFILE) as f:
        collection = yaml.safe_load(f)['Collections'][0]
    assert collection['README'] == 'configs/sttm/README.md'


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
