"""study.report and .confirm: paired comparisons on records
made here, with differences known by construction, and every table and plot
rebuilt from records alone."""
import json
import os.path as osp

import numpy as np
import pytest
from sttm_study import report, stats
from sttm_study.confirm import write_report
from sttm_study.protocol import Protocol
from sttm_study.records import RunRecord

VALUES = dict(
    baseline='vit',
    primary='sttm',
    peers=['tome', 'drop'],
    margin=2.0,
    alpha=0.05,
    half_width=1.5,
    train_subset=200,
    seeds=list(range(12)),
    test_per_class=200)
PROTOCOL = Protocol.from_dict(VALUES)


def _records(offsets, n=12, noise=0.5, seed=0):
    """Records of variants whose test top-1 is a shared per-seed level plus
    the variant's offset plus small noise."""
    rng = np.random.default_rng(seed)
    level = rng.normal(80, 3, n)
    records = []
    for name, offset in offsets.items():
        for s in range(n):
            top1 = float(level[s] + offset + rng.normal(0, noise))
            curve = [
                dict(
                    epoch=e, train_top1=90 + e / 10, loss=1 / e, dev_top1=top1)
                for e in range(1, 11)
            ]
            records.append(
                RunRecord(
                    variant=name,
                    regime='finetune',
                    seed=s,
                    config='c.py',
                    commit='a' * 40,
                    dirty=False,
                    commands=['python x'],
                    metrics=dict(
                        train=dict(top1=95.0, top5=100.0),
                        dev=dict(top1=top1, top5=100.0),
                        test=dict(top1=top1, top5=100.0)),
                    curve=curve,
                    seconds=1.0))
    return records


def test_compare_finds_what_was_built():
    records = _records(dict(vit=0.0, sttm=0.2, tome=-3.0, drop=0.1))
    rows = {
        r['other']: r
        for r in report.compare(records, 'sttm', ['vit', 'tome', 'drop'])
    }
    # 3 points ahead of ToMe by construction: shown, after Holm.
    assert rows['tome']['verdict'] == 'ahead'
    assert rows['tome']['ci_t'][0] > 2
    # Level with the baseline: equivalent within +-2, no difference shown.
    assert rows['vit']['verdict'] == 'no difference shown'
    assert rows['vit']['equivalent']
    assert not rows['tome']['equivalent']
    # Holm over the three comparisons, by hand.
    assert [rows[o]['p_holm'] for o in ('vit', 'tome', 'drop')] == \
        pytest.approx(stats.holm([rows[o]['p'] for o in
                                  ('vit', 'tome', 'drop')]))
    assert rows['tome']['wins'] == 12


def test_compare_pairs_only_shared_seeds():
    records = _records(dict(sttm=0.0, vit=0.0), n=4)
    records = [r for r in records if not (r.variant == 'vit' and r.seed == 3)]
    (row, ) = report.compare(records, 'sttm', ['vit'])
    assert row['n'] == 3 and row['seeds'] == [0, 1, 2]
    with pytest.raises(ValueError, match='paired seed'):
        report.compare(records, 'sttm', ['missing'])


def test_write_report_from_records_alone(tmp_path):
    out = tmp_path / 'confirm'
    records = _records(dict(vit=0.0, sttm=0.2, tome=-3.0, drop=-5.0))
    for r in records:
        folder = out / 'test' / 'runs' / r.variant
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f'seed{r.seed}.json').write_text(json.dumps(r.to_dict()))
    gflops = dict(vit=1.0, sttm=0.65, tome=0.66, drop=0.65)
    written = write_report(
        str(tmp_path), 'unused', 'confirm', PROTOCOL, gflops)
    assert written == [osp.join('confirm', 'test.md')]
    text = (out / 'test.md').read_text()
    assert '| sttm | 0.65000 | -35.0% | 12 |' in text
    assert '| tome | 12 | +2.85 |' in text and 'ahead' in text
    assert '90.6 -> 91.0' in text  # where training stands (epochs 6-10)
    assert (out / 'test_forest.png').stat().st_size > 1000
    assert (out / 'test_curves.png').stat().st_size > 1000
    lines = (out / 'test_runs.csv').read_text().splitlines()
    assert len(lines) == 1 + len(records)
    assert 'Interim' not in text
    # Rebuilding gives the same table.
    write_report(str(tmp_path), 'unused', 'confirm', PROTOCOL, gflops)
    assert (out / 'test.md').read_text() == text
    # With runs missing, the page says first that it is not a result.
    (out / 'test' / 'runs' / 'drop' / 'seed11.json').unlink()
    (out / 'test' / 'runs' / 'tome' / 'seed3.json').unlink()
    write_report(str(tmp_path), 'unused', 'confirm', PROTOCOL, gflops)
    assert "**Interim: 46 of the protocol's 48 runs (4 variants x 12 " \
        'seeds).' in (out / 'test.md').read_text()


def test_one_section_per_comparison(tmp_path):
    """A protocol with ``comparisons`` (two GFLOPs points) gets one table
    and one forest plot per point, each against its own others only."""
    out = tmp_path / 'study'
    records = _records(dict(vit=0.0, a=0.1, sa=-3.0, b=0.0, sb=0.2), n=5)
    for r in records:
        folder = out / 'test' / 'runs' / r.variant
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f'seed{r.seed}.json').write_text(json.dumps(r.to_dict()))
    protocol = Protocol.from_dict(
        dict(
            VALUES,
            title='Two points',
            primary='a',
            comparisons=[
                dict(primary='a', others=['vit', 'sa']),
                dict(primary='b', others=['vit', 'sb'])
            ]))
    gflops = dict(vit=1.0, a=0.73, sa=0.74, b=0.67, sb=0.67)
    write_report(str(tmp_path), 'unused', 'study', protocol, gflops)
    text = (out / 'test.md').read_text()
    assert text.startswith('# Two points: test runs')
    assert '## a against each variant' in text
    assert '## b against each variant' in text
    assert '| a - sa |' in text and '| b - sb |' in text
    assert '| a - sb |' not in text and '| b - sa |' not in text
    assert (out / 'test_forest.png').exists()
    assert (out / 'test_forest1.png').exists()


def test_dirty_records_are_flagged():
    records = _records(dict(sttm=0.0), n=2)
    records[0].dirty = True
    assert '1 run(s) from a tree with uncommitted changes' in \
        report.commits_line(records)


def test_choose_peers_on_dev():
    from sttm_study.confirm import choose_peers
    protocol = Protocol.from_dict(
        dict(
            VALUES,
            peers=['drop'],
            dev_seeds=[0, 1, 2],
            peer_choices=dict(ToMe=['tome-a', 'tome-b', 'tome-c'])))
    records = _records({
        'tome-a': 0.0,
        'tome-b': 1.0,
        'tome-c': 1.0
    },
                       n=3,
                       noise=0.0)
    chosen = choose_peers(records, protocol)
    # b and c tie at the best mean: the first listed wins.
    assert chosen['peers'] == ['drop', 'tome-b']
    assert chosen['choices']['ToMe']['tome-b'] == pytest.approx(
        chosen['choices']['ToMe']['tome-a'] + 1.0)
    with pytest.raises(ValueError, match="'tome-c' has no dev run"):
        choose_peers([
            r for r in records if not (r.variant == 'tome-c' and r.seed == 2)
        ], protocol)


def test_per_seed_table_matches_a_direct_difference():
    records = _records(dict(vit=0.0, sttm=0.5, tome=-1.0), n=4)
    for r in records:
        r.block = dict(id='A' if r.seed < 2 else 'B')
    lines = report.per_seed_table(records, 'sttm', ['vit', 'tome'])
    top1 = {(r.variant, r.seed): r.top1('test') for r in records}
    assert lines[0] == '| seed | block | vit | tome |'
    for seed in range(4):
        cells = [c.strip() for c in lines[2 + seed].split('|')[1:-1]]
        assert cells[:2] == [str(seed), 'A' if seed < 2 else 'B']
        assert float(cells[2]) == pytest.approx(
            top1['sttm', seed] - top1['vit', seed], abs=0.006)
    # One mean row per block, over that block's seeds only.
    mean_b = [c.strip() for c in lines[-1].split('|')[1:-1]]
    assert mean_b[0] == 'mean, block B'
    assert float(mean_b[3]) == pytest.approx(
        np.mean([top1['sttm', s] - top1['tome', s] for s in (2, 3)]),
        abs=0.006)


def test_harvest_marks_blocks_and_takes_whole_seeds(tmp_path):
    from sttm_study.confirm import harvest, sha256_of
    source, out = tmp_path / 'wt', tmp_path / 'main'
    records = _records(dict(vit=0.0, sttm=0.5), n=3)
    for r in records:
        if (r.variant, r.seed) == ('sttm', 2):
            continue  # seed 2 is not complete in the source
        folder = source / 'test' / 'runs' / r.variant
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f'seed{r.seed}.json').write_text(json.dumps(r.to_dict()))
    # Seed 0 of the baseline is already in this checkout: kept as it is.
    kept = out / 'test' / 'runs' / 'vit' / 'seed0.json'
    kept.parent.mkdir(parents=True)
    kept.write_text(json.dumps(records[0].to_dict()))
    ckpt = tmp_path / 'epoch_10.pth'
    ckpt.write_bytes(b'weights')
    data = tmp_path / 'data'
    (data / 'a').mkdir(parents=True)
    (data / 'a' / 'v.mp4').write_bytes(b'video')
    written = harvest(str(source), str(out), 'test', 'B', str(ckpt), str(data))
    names = sorted(osp.relpath(p, out) for p in written)
    assert names == [
        'test/runs/sttm/seed0.json', 'test/runs/sttm/seed1.json',
        'test/runs/vit/seed1.json'
    ]
    assert 'block' not in json.loads(kept.read_text())
    block = json.loads(
        (out / 'test/runs/sttm/seed1.json').read_text())['block']
    import hashlib
    assert block['id'] == 'B'
    assert block['pretrain_sha256'] == hashlib.sha256(b'weights').hexdigest()
    assert block['data_sha256'] == sha256_of(str(data)) != sha256_of(
        str(data / 'a' / 'v.mp4'))
    assert 'cpu' in block['machine']
    # A second harvest writes nothing new.
    assert harvest(str(source), str(out), 'test', 'B', str(ckpt),
                   str(data)) == []


def test_a_record_is_checked_when_loaded(tmp_path):
    """One record format: a missing or unknown field, or a metric without
    top1, fails in one line naming the file; the first exploratory runs'
    form (val_top1 / train_top1) loads as the same record."""
    from sttm_study.records import RecordError, load_record, load_records
    record = _records(dict(vit=0.0), n=1)[0]
    path = tmp_path / 'runs' / 'vit' / 'seed0.json'
    path.parent.mkdir(parents=True)
    record.save(str(path))
    assert load_records(str(tmp_path / 'runs')) == [record]
    for change, message in [
        (dict(metrics=dict(dev=dict(top5=1.0))),
         r"metrics\['dev'\] has no top1"),
        (dict(seeed=0), r"unknown record field\(s\) \['seeed'\]"),
        (dict(seed='0'), 'seed must be an int'),
    ]:
        path.write_text(json.dumps(dict(record.to_dict(), **change)))
        with pytest.raises(RecordError, match=message) as info:
            load_record(str(path))
        assert str(info.value).startswith(str(path)) and \
            '\n' not in str(info.value)
    values = record.to_dict()
    del values['commit']
    path.write_text(json.dumps(values))
    with pytest.raises(RecordError, match='the record has no commit'):
        load_record(str(path))
    old = dict(
        variant='vit',
        regime='finetune',
        seed=0,
        config='c.py',
        commit='b' * 40,
        dirty=False,
        val_top1=61.0,
        train_top1=70.0)
    path.write_text(json.dumps(old))
    loaded = load_record(str(path))
    assert loaded.top1('dev') == 61.0 and loaded.top1('train') == 70.0
