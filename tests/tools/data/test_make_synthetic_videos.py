"""tools/data/make_synthetic_videos.py: writes the dataset and its spec,
skips a finished identical dataset, regenerates (without leftovers) when the
spec changes."""
import json
import os
import os.path as osp
import sys

import pytest
from tool_modules import load_tool

REPO_ROOT = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
SCRIPT = osp.join(REPO_ROOT, 'tools', 'data', 'make_synthetic_videos.py')
TINY = [
    '--num-classes', '2', '--train-per-class', '2', '--val-per-class', '1',
    '--resolution', '16', '--num-frames', '4'
]


@pytest.fixture(scope='module')
def cli():
    """The script as a module, so runs stay in this process (fast)."""
    return load_tool('make_synthetic_videos', SCRIPT)


def run(cli, monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, 'argv', [SCRIPT, *args])
    cli.main()


def test_writes_spec_and_skips_identical_run(cli, monkeypatch, tmp_path,
                                             capsys):
    out = str(tmp_path / 'data')
    run(cli, monkeypatch, out, *TINY)
    with open(osp.join(out, cli.SPEC_FILE)) as f:
        record = json.load(f)
    assert record['spec']['train_per_class'] == 2
    assert record['spec']['resolution'] == 16
    assert len(os.listdir(osp.join(out, 'videos'))) == 6
    mtime = os.stat(osp.join(out, 'videos', 'train_00000.mp4')).st_mtime_ns

    capsys.readouterr()
    run(cli, monkeypatch, out, *TINY)
    assert 'nothing to do' in capsys.readouterr().out
    assert os.stat(osp.join(out, 'videos',
                            'train_00000.mp4')).st_mtime_ns == mtime


def test_other_spec_regenerates_without_leftovers(cli, monkeypatch, tmp_path):
    out = str(tmp_path / 'data')
    run(cli, monkeypatch, out, *TINY)
    smaller = [*TINY]
    smaller[smaller.index('--train-per-class') + 1] = '1'
    run(cli, monkeypatch, out, *smaller)
    assert sorted(os.listdir(osp.join(out, 'videos'))) == [
        'train_00000.mp4', 'train_00001.mp4', 'val_00000.mp4', 'val_00001.mp4'
    ]
    with open(osp.join(out, cli.SPEC_FILE)) as f:
        assert json.load(f)['spec']['train_per_class'] == 1


def test_interrupted_run_is_not_taken_as_done(cli, monkeypatch, tmp_path):
    out = str(tmp_path / 'data')
    run(cli, monkeypatch, out, *TINY)
    os.remove(osp.join(out, 'videos', 'val_00001.mp4'))
    run(cli, monkeypatch, out, *TINY)
    assert osp.isfile(osp.join(out, 'videos', 'val_00001.mp4'))


def test_bad_spec_is_named(cli, monkeypatch, tmp_path):
    with pytest.raises(SystemExit, match='num_classes must be in'):
        run(cli, monkeypatch, str(tmp_path), '--num-classes', '99')
