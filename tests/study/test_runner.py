"""study.runner and .data: the learning curve read from
MMEngine's scalars, the commit state, and the splits."""
import json
import subprocess
import sys

import pytest
from sttm_study.data import StudyData
from sttm_study.runner import git_state, read_curve


def test_read_curve(tmp_path):
    vis = tmp_path / '20260101_000000' / 'vis_data'
    vis.mkdir(parents=True)
    lines = [
        dict(lr=0.1, loss=2.0, top1_acc=0.25, epoch=1, iter=10, step=10),
        dict(lr=0.1, loss=1.0, top1_acc=0.75, epoch=1, iter=20, step=20),
        {
            'acc/top1': 0.5,
            'acc/top5': 0.9,
            'step': 1
        },
        dict(lr=0.1, loss=0.5, top1_acc=1.0, epoch=2, iter=30, step=30),
        {
            'acc/top1': 0.625,
            'acc/top5': 1.0,
            'step': 2
        },
    ]
    (vis / 'scalars.json').write_text('\n'.join(json.dumps(x)
                                                for x in lines) + '\n')
    assert read_curve(str(tmp_path)) == [
        dict(epoch=1, loss=1.5, train_top1=50.0, dev_top1=50.0, dev_top5=90.0),
        dict(
            epoch=2, loss=0.5, train_top1=100.0, dev_top1=62.5,
            dev_top5=100.0),
    ]


def test_git_state(tmp_path):

    def git(*cmd):
        subprocess.run(['git', *cmd],
                       cwd=tmp_path,
                       check=True,
                       capture_output=True)

    git('init', '-q')
    (tmp_path / 'a.txt').write_text('a')
    (tmp_path / 'runs').mkdir()
    git('add', 'a.txt')
    git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'a')
    state = git_state(str(tmp_path))
    assert len(state['commit']) == 40 and not state['dirty']
    (tmp_path / 'runs' / 'r.json').write_text('{}')
    assert git_state(str(tmp_path))['dirty']
    assert not git_state(str(tmp_path), ignore=['runs'])['dirty']
    (tmp_path / 'a.txt').write_text('b')
    assert git_state(str(tmp_path), ignore=['runs'])['dirty']


def test_study_data_lists():
    data = StudyData('/m', '/s', '/t')
    assert data.lists('dev') == dict(
        ann_file='/m/val_list_videos.txt', video='/m/videos')
    assert data.lists('test') == dict(
        ann_file='/t/test_list_videos.txt', video='/t/videos')
    assert data.lists('train_subset')['ann_file'].endswith(
        'train_subset_list_videos.txt')
    with pytest.raises(ValueError, match='held-out test split'):
        StudyData('/m', '/s').lists('test')
    with pytest.raises(ValueError, match="split must be"):
        data.lists('val')


def _runner(root):
    from sttm_study.runner import StudyRunner
    return StudyRunner(
        str(root),
        'configs',
        data=None,
        work_dir=str(root),
        commit=dict(commit='x', dirty=False))


def test_call_runs_a_killed_tool_once_more(tmp_path):
    # The tool kills itself with SIGKILL the first time only.
    tool = tmp_path / 'tool.py'
    tool.write_text(
        'import os, signal, sys\n'
        'mark = os.path.join(os.path.dirname(__file__), "ran")\n'
        'if not os.path.exists(mark):\n'
        '    open(mark, "w").close(); print("first"); sys.stdout.flush()\n'
        '    os.kill(os.getpid(), signal.SIGKILL)\n'
        'print("second")\n')
    log = tmp_path / 'tool.log'
    with pytest.warns(UserWarning, match='killed by SIGKILL'):
        recorded = _runner(tmp_path)._call(
            [sys.executable, str(tool)], str(log))
    assert recorded.startswith('python ')
    assert log.read_text() == 'second\n'
    assert (tmp_path / 'tool.log.1').read_text() == 'first\n'


def test_call_names_the_signal_and_the_exit_code(tmp_path):
    tool = tmp_path / 'tool.py'
    tool.write_text(
        'import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n')
    with pytest.warns(UserWarning), \
            pytest.raises(RuntimeError, match=r'killed by SIGTERM'):
        _runner(tmp_path)._call([sys.executable, str(tool)],
                                str(tmp_path / 'a.log'))
    tool.write_text('raise SystemExit(3)\n')
    with pytest.raises(RuntimeError, match=r'exit 3'):
        _runner(tmp_path)._call([sys.executable, str(tool)],
                                str(tmp_path / 'b.log'))


def test_machine_state():
    import torch
    from sttm_study.runner import machine_state
    state = machine_state()
    assert state['torch'] == torch.__version__
    assert state['isa'] in ('avx512', 'avx2', 'other')
    assert state['cpu'] and state['python'].count('.') == 2
