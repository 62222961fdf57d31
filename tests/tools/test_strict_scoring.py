"""tools/test.py --strict-scoring: a test video that cannot be scored is an
error listing the files, instead of a metric over the others."""
import os.path as osp
import shutil
import sys

import pytest
from bad_videos import corrupt_videos
from mmaction.registry import DATASETS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from tool_modules import load_tool

from mmaction_sttm.datasets import BadVideoError

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'synthetic',
                  'vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py')


@pytest.fixture(scope='module')
def test_tool():
    return load_tool('tool_test', osp.join(REPO, 'tools', 'test.py'))


@pytest.fixture
def broken_val(tiny_dataset, tmp_path) -> str:
    """A copy of the tiny dataset whose first two val videos are broken."""
    root = str(tmp_path / 'data')
    shutil.copytree(tiny_dataset, root)
    corrupt_videos(
        osp.join(root, 'videos'), ['val_00000.mp4', 'val_00001.mp4'],
        kinds=['text', 'cut-0.5'])
    return root


def build_test_dataset(test_tool, broken_val, data_cfg_options, tmp_path,
                       monkeypatch, strict: bool):
    """The test dataset of tools/test.py's config (with --strict-scoring or
    not), pointed at ``broken_val``."""
    checkpoint = tmp_path / 'model.pth'
    checkpoint.write_bytes(b'')
    argv = [
        'test.py', CONFIG,
        str(checkpoint), '--work-dir',
        str(tmp_path), '--cfg-options', *data_cfg_options(broken_val)
    ]
    if strict:
        argv.append('--strict-scoring')
    monkeypatch.setattr(sys, 'argv', argv)
    cfg = test_tool.merge_args(Config.fromfile(CONFIG), test_tool.parse_args())
    assert cfg.test_dataloader.dataset.strict_scoring is strict
    init_default_scope('mmaction')
    return DATASETS.build(cfg.test_dataloader.dataset)


@pytest.mark.parametrize('strict', [False, True])
def test_strict_scoring_flag(test_tool, broken_val, data_cfg_options, tmp_path,
                             monkeypatch, strict):
    args = (test_tool, broken_val, data_cfg_options, tmp_path, monkeypatch)
    if not strict:
        # The default: the two broken videos are left out and the others
        # scored.
        dataset = build_test_dataset(*args, strict=False)
        assert dataset.num_scored == dataset.num_listed - 2
        return
    with pytest.raises(BadVideoError) as info:
        build_test_dataset(*args, strict=True)
    message = str(info.value)
    assert 'strict_scoring: 2 of ' in message
    for name in ('val_00000.mp4', 'val_00001.mp4'):
        assert osp.join(broken_val, 'videos', name) in message


def test_strict_scoring_needs_a_robust_dataset(test_tool):
    cfg = Config(
        dict(
            test_dataloader=dict(
                dataset=dict(
                    type='RepeatDataset', dataset=dict(type='VideoDataset')))))
    with pytest.raises(ValueError, match='RobustVideoDataset'):
        test_tool.set_strict_scoring(cfg)
    cfg.test_dataloader.dataset.dataset.type = 'RobustVideoDataset'
    test_tool.set_strict_scoring(cfg)
    assert cfg.test_dataloader.dataset.dataset.strict_scoring is True
