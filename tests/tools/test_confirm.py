"""tools/analysis_tools/confirm.py: refuses a dirty tree, and a seconds-long
run goes pretrain -> fine-tune -> train / dev / held-out test through the real
tools, keeps one record per run, and rebuilds the tables from them."""
import json
import os.path as osp
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
from sttm_study.confirm import DirtyTreeError, run
from sttm_study.records import RunRecord

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_refuses_a_dirty_tree(tmp_path):

    def git(*cmd):
        subprocess.run(['git', *cmd],
                       cwd=tmp_path,
                       check=True,
                       capture_output=True)

    git('init', '-q')
    (tmp_path / 'a.py').write_text('a = 1\n')
    git('add', 'a.py')
    git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'a')
    (tmp_path / 'a.py').write_text('a = 2\n')
    args = SimpleNamespace(out='results', allow_dirty=False)
    with pytest.raises(DirtyTreeError, match='uncommitted changes'):
        run(str(tmp_path), 'configs', args, {}, 'test')


def test_smoke_run_and_report(tmp_path):
    out, work, data = tmp_path / 'out', tmp_path / 'work', tmp_path / 'data'
    cmd = [
        sys.executable, 'tools/analysis_tools/confirm.py', 'run', '--smoke',
        '--allow-dirty', '--variants', 'vit', '--seeds', '0', '1', '--jobs',
        '2', '--out',
        str(out), '--work-dir',
        str(work), '--data-root',
        str(data)
    ]
    subprocess.run(cmd, cwd=ROOT, check=True)
    records = sorted((out / 'test' / 'runs').glob('*/seed*.json'))
    assert [p.parent.name + '/' + p.name
            for p in records] == ['vit/seed0.json', 'vit/seed1.json']
    record = json.loads(records[0].read_text())
    assert set(record['metrics']) == {'train', 'dev', 'test'}
    assert [p['epoch'] for p in record['curve']] == [1]
    assert len(record['commit']) == 40
    assert set(
        record['machine']) == {'cpu', 'isa', 'torch', 'python', 'threads'}
    assert record['machine']['threads'] >= 1
    assert record['commands'][0].startswith('python tools/train.py')
    # One pre-training shared by both seeds (the protocol's pretrain_seed).
    assert sorted(
        p.name
        for p in (work / 'test' / 'pretrain' / 'vit').iterdir()) == ['seed0']
    # The held-out test split is its own folder.
    assert (data / 'test' / 'test_list_videos.txt').exists()
    # One variant: the variant table, no comparison (the comparison
    # sections are built from records in tests/study/test_report.py; a
    # merger's run end to end in tests/tools/test_study.py).
    table = (out / 'test.md').read_text()
    assert re.search(r'\| vit \| [0-9.]+ \| \+0\.0% \| 2 \|', table)
    assert (out / 'test_curves.png').exists()
    # `report` rebuilds the same table from the records alone.
    (out / 'test.md').unlink()
    subprocess.run([
        sys.executable, 'tools/analysis_tools/confirm.py', 'report', '--out',
        str(out)
    ],
                   cwd=ROOT,
                   check=True)
    assert (out / 'test.md').read_text() == table


def test_run_from_scratch(tmp_path, monkeypatch):
    """A study in the scratch regime (the demo study) runs its protocol's
    variants from scratch/, pre-trains nothing and makes no shape task (the
    runner itself is the one the smoke run above goes through)."""
    from sttm_study import confirm
    made = {}

    class Runner:

        def __init__(self, root, config_dir, data, work_dir, **kwargs):
            made.update(data=data, kwargs=kwargs)
            self.pretrain_seed = kwargs['pretrain_seed']

        def pretrain(self, seed):
            raise AssertionError('a scratch study pre-trains nothing')

        def run(self, variant, seed, splits=None):
            # No shifted split in this protocol: dev and test.
            assert splits == ('dev', 'test')
            return RunRecord(
                variant=variant.name,
                regime=variant.regime,
                seed=seed,
                config=variant.config,
                commit='a' * 40,
                dirty=True,
                metrics=dict(dev=dict(top1=50.0)))

    monkeypatch.setattr(confirm, 'StudyRunner', Runner)
    from sttm_study.protocol import load_protocol
    protocol = load_protocol(
        osp.join(ROOT, 'configs/synthetic/demo_study/protocol.py'))
    args = SimpleNamespace(
        out=str(tmp_path / 'out'),
        variants=None,
        seeds=[0],
        jobs=1,
        resume=False,
        allow_dirty=True,
        data_root=str(tmp_path / 'data'),
        work_dir=str(tmp_path / 'work'),
        smoke=True)
    run(ROOT, 'configs/synthetic/demo_study', args, protocol, 'test')
    records = sorted((tmp_path / 'out' / 'test' / 'runs').glob('*/seed0.json'))
    assert sorted(p.parent.name for p in records) == sorted(protocol.variants)
    assert {json.loads(p.read_text())['regime']
            for p in records} == {'scratch'}
    assert made['data'].shape is None and made['data'].test is not None
    assert sorted(
        p.name for p in (tmp_path / 'data').iterdir()) == ['motion', 'test']
