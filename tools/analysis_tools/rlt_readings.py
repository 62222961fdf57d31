"""RLT's readings on the RLT study's dev split (PROTOCOL.md's amendment of
2026-12-06): the off-the-shelf tests and the table of
``docs/results/rlt/study/dev_readings.md``.

Two commands, run after ``confirm.py dev --config-dir
configs/synthetic/rlt_study --variants vit rlt-t0.3 ... --seeds 0 1``:

- ``ots``: each ``vit`` dev run's last checkpoint tested on the dev split
  with ``tools/test.py`` (1 clip x 3 crops), with no reducer and with RLT
  inserted at test time in each ``pairs`` reading (its length embedding is
  zero off the shelf); the tokens kept and GFLOPs of each reading by
  ``tools/analysis_tools/get_flops.py --videos``. Writes a small JSON.
- ``table``: the fine-tuned and off-the-shelf tables (markdown) from the
  dev records and that JSON: dev top-1 per seed, the mean, each reading
  minus today's default paired by seed with its 95% t interval, and the
  verdict of the amendment's decision rule.

Examples::

    python tools/analysis_tools/rlt_readings.py ots --seeds 0 1
    python tools/analysis_tools/rlt_readings.py table
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

from sttm_study.records import load_records
from sttm_study.runner import call_tool, git_state, machine_state
from sttm_study.stats import paired_t

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
STUDY = osp.join('configs', 'synthetic', 'rlt_study', 'finetune')
SUFFIX = '_spacetime-vit-tiny-p8-t2_shape-pre_1xb32-8x2x1-30e_' \
    'synthetic-static-rgb.py'
VIT = osp.join(STUDY, 'vit' + SUFFIX)
DEV = dict(
    ann_file='data/study_static/motion/val_list_videos.txt',
    video='data/study_static/motion/videos')
RECORDS = osp.join('docs', 'results', 'rlt', 'study', 'dev', 'runs')
OTS = osp.join('docs', 'results', 'rlt', 'study', 'dev_readings_ots.json')
#: Today's default first; the readings the amendment compares with it.
DEFAULT = 'rlt-t0.3'
READINGS = ['rlt-ends-t0.3275', 'rlt-t0.3-noembed', 'rlt-ends-t0.3275-noembed']
#: RLT inserted off the shelf: today's ``pairs`` first.
OTS_READINGS = {
    'none': None,
    'all': dict(type='RLT', threshold=0.3, pairs='all'),
    'ends': dict(type='RLT', threshold=0.3275, pairs='ends'),
}


def _reducer_options(reducer: Optional[Dict]) -> List[str]:
    if reducer is None:
        return []
    return [f'model.backbone.reducer.{k}={v}' for k, v in reducer.items()]


def count_tokens(config: str, reducer: Optional[Dict]) -> Dict:
    """Mean GFLOPs per view and tokens kept over the dev split's videos
    (``get_flops.py --videos``), with its command."""
    import subprocess
    cmd = [
        sys.executable, 'tools/analysis_tools/get_flops.py', config,
        '--videos', DEV['ann_file'], '--video-prefix', DEV['video'],
        '--num-videos', '200', '--json'
    ]
    options = _reducer_options(reducer)
    if options:
        cmd += ['--cfg-options'] + options
    out = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    keep = ('gflops_mean', 'unreduced_gflops', 'tokens_mean', 'tokens_min',
            'tokens_max')
    row = {k: result[k] for k in keep if k in result}
    row['ratio'] = round(result['gflops_mean'] / result['unreduced_gflops'], 4)
    row['command'] = ' '.join(['python'] + cmd[1:])
    return row


def ots(seeds: Sequence[int], work_dir: str, out: str) -> Dict:
    """Test each ``vit`` dev checkpoint off the shelf in each reading."""
    state = git_state(ROOT, ignore=[out])
    record = dict(
        commit=state['commit'],
        dirty=state['dirty'],
        machine=dict(machine_state(), threads=1),
        split='dev',
        config=VIT,
        readings=OTS_READINGS,
        counts={},
        runs=[])
    for name, reducer in OTS_READINGS.items():
        record['counts'][name] = count_tokens(VIT, reducer)
    for seed in seeds:
        run = osp.join(ROOT, 'work_dirs', 'confirm', 'dev', 'finetune', 'vit',
                       f'seed{seed}')
        with open(osp.join(run, 'last_checkpoint')) as f:
            ckpt = osp.relpath(f.read().strip(), ROOT)
        for name, reducer in OTS_READINGS.items():
            wd = osp.join(work_dir, f'seed{seed}', name)
            os.makedirs(osp.join(ROOT, wd), exist_ok=True)
            cmd = [
                sys.executable, 'tools/test.py', VIT, ckpt, '--work-dir', wd,
                '--cfg-options', 'model.backbone.init_cfg=None',
                f'test_dataloader.dataset.ann_file={DEV["ann_file"]}',
                'test_dataloader.dataset.data_prefix.video='
                f'{DEV["video"]}'
            ] + _reducer_options(reducer)
            recorded = call_tool(cmd, osp.join(ROOT, wd, 'test.log'), ROOT, 1)
            with open(osp.join(ROOT, wd, 'test_metrics.json')) as f:
                metrics = json.load(f)
            record['runs'].append(
                dict(
                    seed=seed,
                    reading=name,
                    top1=round(100 * metrics['acc/top1'], 3),
                    top5=round(100 * metrics['acc/top5'], 3),
                    command=recorded))
            print(
                f'vit seed {seed}, {name}: dev top-1 '
                f'{record["runs"][-1]["top1"]:.2f}',
                flush=True)
    with open(osp.join(ROOT, out), 'w') as f:
        json.dump(record, f, indent=1)
        f.write('\n')
    return record


def _fmt_ci(values: Dict[int, float], base: Dict[int, float],
            seeds: Sequence[int]) -> Dict[str, object]:
    """Paired difference ``values - base`` over ``seeds``: its cell and the
    verdict of the decision rule (ahead: a 95% interval above 0 of non-zero
    width)."""
    a = [values[s] for s in seeds]
    b = [base[s] for s in seeds]
    result = paired_t(a, b)
    low, high = result.ci
    if result.sd == 0:
        verdict = 'not shown (equal differences: zero-width interval)'
    elif low > 0:
        verdict = 'ahead'
    elif high < 0:
        verdict = 'behind'
    else:
        verdict = 'no difference shown'
    per_seed = ', '.join(f'{x - y:+.1f}' for x, y in zip(a, b))
    cell = (f'{result.mean:+.2f} [{low:+.2f}, {high:+.2f}] '
            f'({per_seed})')
    return dict(cell=cell, verdict=verdict, mean=result.mean)


def table(records_dir: str, ots_json: str) -> List[str]:
    """The markdown lines of the fine-tuned and off-the-shelf tables."""
    from sttm_study.variants import load_variants
    records = load_records(osp.join(ROOT, records_dir))
    runs: Dict[str, Dict[int, object]] = {}
    for r in records:
        runs.setdefault(r.variant, {})[r.seed] = r
    seeds = sorted(runs[DEFAULT])
    configs = {
        v.name: v.config
        for v in load_variants(ROOT, osp.dirname(STUDY), ['finetune'],
                               [DEFAULT, 'vit'] + READINGS)
    }
    dev = {
        n: {
            s: r.top1('dev')
            for s, r in rs.items()
        }
        for n, rs in runs.items()
    }
    head = ' | '.join(f'dev top-1 seed {s}' for s in seeds)
    lines = [
        '| variant | pairs | length embed | threshold | GFLOPs ratio | '
        f'tokens kept, mean (range) | {head} | mean | minus {DEFAULT}, '
        'mean [95% t CI] (per seed) | verdict | train top-1 (per seed) |',
        '| --- | --- | --- | ---: | ---: | --- | ' + '---: | ' * len(seeds) +
        '---: | --- | --- | --- |'
    ]
    from mmengine.config import Config
    for name in [DEFAULT] + READINGS + ['vit']:
        if name not in runs:
            continue
        reducer = Config.fromfile(osp.join(
            ROOT, configs[name])).model.backbone.get('reducer')
        count = count_tokens(configs[name], None)
        if reducer:
            pairs = reducer.get('pairs', 'all')
            embed = 'on' if reducer.get('length_embed', True) else 'off'
            threshold = f'{reducer["threshold"]:g}'
            kept = (f'{count["tokens_mean"]:.3f} ({count["tokens_min"]}-'
                    f'{count["tokens_max"]})')
        else:
            pairs = embed = threshold = '-'
            kept = '64'
        top1 = [dev[name].get(s) for s in seeds]
        cells = ' | '.join('-' if t is None else f'{t:.1f}' for t in top1)
        mean = sum(top1) / len(top1) if None not in top1 else None
        if name in READINGS:
            diff = _fmt_ci(dev[name], dev[DEFAULT], seeds)
            compared, verdict = diff['cell'], diff['verdict']
        else:
            compared = verdict = ''
        train = ' / '.join(f'{runs[name][s].top1("train"):.1f}' for s in seeds
                           if s in runs[name])
        lines.append(f'| `{name}` | {pairs} | {embed} | {threshold} | '
                     f'{count["ratio"]:.4f} | {kept} | {cells} | '
                     f'{mean:.2f} | {compared} | {verdict} | {train} |')
    with open(osp.join(ROOT, ots_json)) as f:
        shelf = json.load(f)
    top1 = {}
    for run in shelf['runs']:
        top1.setdefault(run['reading'], {})[run['seed']] = run['top1']
    ots_seeds = sorted(top1['all'])
    head = ' | '.join(f'dev top-1 seed {s}' for s in ots_seeds)
    lines += [
        '', '| `vit` off the shelf, RLT inserted | threshold | GFLOPs ratio | '
        f'tokens kept, mean (range) | {head} | mean | minus pairs=all, mean '
        '[95% t CI] (per seed) | verdict |', '| --- | ---: | ---: | --- | ' +
        '---: | ' * len(ots_seeds) + '---: | --- | --- |'
    ]
    for name, reducer in shelf['readings'].items():
        count = shelf['counts'][name]
        if reducer:
            label = f'pairs={reducer["pairs"]}'
            threshold = f'{reducer["threshold"]:g}'
            kept = (f'{count["tokens_mean"]:.3f} ({count["tokens_min"]}-'
                    f'{count["tokens_max"]})')
        else:
            label, threshold, kept = 'none (no reducer)', '-', '64'
        values = [top1[name][s] for s in ots_seeds]
        cells = ' | '.join(f'{v:.1f}' for v in values)
        compared = verdict = ''
        if name not in ('none', 'all'):
            diff = _fmt_ci(top1[name], top1['all'], ots_seeds)
            compared, verdict = diff['cell'], diff['verdict']
        lines.append(f'| {label} | {threshold} | {count["ratio"]:.4f} | '
                     f'{kept} | {cells} | {sum(values) / len(values):.2f} | '
                     f'{compared} | {verdict} |')
    return lines


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('command', choices=('ots', 'table'))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--records', default=RECORDS)
    parser.add_argument('--ots', default=OTS, help='the off-the-shelf JSON')
    parser.add_argument(
        '--work-dir',
        default=osp.join('work_dirs', 'rlt_readings', 'ots'),
        help='ots: where the tests keep their outputs')
    args = parser.parse_args(argv)
    if args.command == 'ots':
        ots(args.seeds, args.work_dir, args.ots)
    else:
        print('\n'.join(table(args.records, args.ots)))


if __name__ == '__main__':
    main()
