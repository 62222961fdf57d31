"""Small-scale reproduction of the paper's ablations on the motion dataset.

Trains and tests every variant below with several seeds through the project's
own ``tools/train.py`` and ``tools/test.py`` (1 clip x 3 crops), counts its
GFLOPs, and writes a results table (mean +- std top-1, GFLOPs), a CSV and a
plot of top-1 against GFLOPs.

Example (about an hour on 2 CPU cores)::

    python tools/analysis/study.py --out docs/results/study

The variants are config overrides on two small base configs (MMAction2's ViT
with 2-frame tubelets, and TimeSformer, at 32x32, 8 frames); each one mirrors
a row of the paper's tables, scaled from 12 blocks to 4: merges after blocks
(6, 9) become (2, 3), and Table 4's [3, 6] becomes (1, 2).
"""
import argparse
import csv
import json
import os
import os.path as osp
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, ROOT)

VIT = 'configs/synthetic/study/study_vit-tiny-p8_scratch_1xb32-8x2x1-12e_synthetic-motion-rgb.py'  # noqa: E501
TSF = 'configs/synthetic/study/study_timesformer-tiny-p8_scratch_1xb32-8x2x1-12e_synthetic-motion-rgb.py'  # noqa: E501


def _sttm(**kwargs) -> Dict:
    # The paper's setting, random fusion init, unless a variant says not.
    return _merger('STTM', **dict(dict(ratio=0.5, fuse_init='random'),
                                  **kwargs))


def _merger(merger_type: str, **kwargs) -> Dict:
    """Overrides that put a merger after blocks 2 and 3 (the paper's 6 and
    9), spatial then spatio-temporal, as STTM's default schedule."""
    merger = dict(type=merger_type, layers=(2, 3),
                  stages=('spatial', 'spatiotemporal'))
    merger.update(kwargs)
    return {'model.backbone.merger': merger}


# name -> (base config, overrides, what it reproduces)
VARIANTS = {
    'vit': (VIT, {}, 'ViT baseline (Table 6)'),
    'vit+sttm': (VIT, _sttm(), 'ViT + STTM, two-stage, ratio 0.5'),
    'timesformer': (TSF, {}, 'TimeSformer baseline (Table 6)'),
    'timesformer+sttm': (TSF, _sttm(), 'TimeSformer + STTM (Table 6)'),
    'ratio-0.2': (VIT, _sttm(ratio=0.2), 'Table 3'),
    'ratio-0.8': (VIT, _sttm(ratio=0.8), 'Table 3'),
    'no-motion': (VIT, _sttm(motion=False), 'Table 1, appearance only'),
    'no-meta-filter': (VIT, _sttm(meta_filter=False), 'Table 2'),
    'spatial-only': (VIT, _sttm(stages=('spatial', 'spatial')),
                     'Table 5, spatial'),
    'global-only': (VIT, _sttm(stages=('spatiotemporal', 'spatiotemporal')),
                    'Table 5, global'),
    'layers-early': (VIT, _sttm(layers=(1, 2)), 'Table 4, [3,6]'),
    'identity-init': (VIT, _sttm(fuse_init='identity'),
                      'fusion initialised to Y = A'),
    # Diagnosis of the above: identity phi, soft merge, no fusion layer.
    'identity-no-motion': (VIT, _sttm(fuse_init='identity', motion=False),
                           'appearance only, phi initialised to I'),
    # Other mergers at STTM's GFLOPs (within 3%): their ratio is lower
    # because STTM's encoder and fusion layer cost FLOPs that theirs do not
    # (docs/mergers.md; the table prints the GFLOPs of each).
    'tome': (VIT, _merger('ToMe', ratio=0.36), 'ToMe, equal GFLOPs'),
    'evit': (VIT, _merger('EViT', ratio=0.42), 'EViT, equal GFLOPs'),
    'random-drop': (VIT, _merger('RandomDrop', ratio=0.36),
                    'random token drop, equal GFLOPs'),
    'uniform-pool': (VIT, _merger('UniformPool', ratio=0.36),
                     'uniform spatial pooling, equal GFLOPs'),
}

# Off the shelf: no training; the merger is put into the trained weights of
# another variant and tested (the merger's own weights keep their init).
# name -> (variant whose last checkpoint is loaded, overrides, note)
OFF_THE_SHELF = {
    'ots-sttm-identity': ('vit', _sttm(fuse_init='identity'),
                          'STTM (identity fusion) in the trained ViT'),
    'ots-sttm-random': ('vit', _sttm(),
                        'STTM (paper fusion init) in the trained ViT'),
    'ots-tome': ('vit', _merger('ToMe', ratio=0.5),
                 'ToMe (same token counts) in the trained ViT'),
    'ots-tome-equal': ('vit', _merger('ToMe', ratio=0.36),
                       'ToMe (equal GFLOPs) in the trained ViT'),
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS)[:12],
                        choices=[*VARIANTS, *OFF_THE_SHELF],
                        help='trained variants, and off-the-shelf ones '
                        '(ots-*: the trained weights of another variant, '
                        'tested with a merger put in)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--epochs', type=int, default=None,
                        help='override the base configs\' epochs')
    parser.add_argument('--data', default='data/synthetic_motion_study',
                        help='dataset folder (generated when missing)')
    parser.add_argument('--train-per-class', type=int, default=80)
    parser.add_argument('--val-per-class', type=int, default=20)
    parser.add_argument('--work-dir', default='work_dirs/study')
    parser.add_argument('--out', default='docs/results/study')
    parser.add_argument('--name', default='study',
                        help='file stem of the table, CSV and plot')
    parser.add_argument('--title',
                        default='Ablation study on the synthetic motion '
                        'dataset')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs at a time, each with cores / jobs threads '
                        '(small models use cores better this way)')
    parser.add_argument('--resume', action='store_true',
                        help='reuse runs that already have test metrics')
    parser.add_argument('--smoke', action='store_true',
                        help='seconds-long run: tiny data, 1 epoch')
    return parser.parse_args(argv)


def _run(cmd: List[str], log: str, threads: Optional[int] = None) -> None:
    """Run a tool, keep its output in ``log``; raise with the log's tail."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep +
               os.environ.get('PYTHONPATH', ''))
    if threads:
        env['OMP_NUM_THREADS'] = str(threads)
    with open(log, 'w') as f:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=f,
                              stderr=subprocess.STDOUT, env=env)
    if proc.returncode:
        with open(log) as f:
            tail = ''.join(f.readlines()[-20:])
        raise RuntimeError(f'{" ".join(cmd)} failed ({log}):\n{tail}')


def _options(overrides: Dict, data: str, epochs: Optional[int]) -> List[str]:
    opts = dict(overrides)
    for split, ann in (('train', 'train'), ('val', 'val'), ('test', 'val')):
        opts[f'{split}_dataloader.dataset.ann_file'] = osp.join(
            data, f'{ann}_list_videos.txt')
        opts[f'{split}_dataloader.dataset.data_prefix.video'] = osp.join(
            data, 'videos')
    if epochs is not None:
        opts['train_cfg.max_epochs'] = epochs
    args = ['--cfg-options']
    for key, value in _flatten(opts).items():
        args.append(f'{key}={_literal(value)}')
    return args


def _flatten(opts: Dict, prefix: str = '') -> Dict:
    """Dotted keys for ``--cfg-options`` (it takes no dict literals)."""
    flat = {}
    for key, value in opts.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f'{prefix}{key}.'))
        else:
            flat[f'{prefix}{key}'] = value
    return flat


def _literal(value) -> str:
    """A value as MMEngine's ``DictAction`` parses it back."""
    if isinstance(value, (list, tuple)):
        inner = ','.join(_literal(v) for v in value)
        return f'({inner},)' if len(value) == 1 else f'({inner})'
    return str(value)


def _gflops(config: str, overrides: Dict) -> Dict[str, float]:
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    if not MMLogger.check_instance_created('mmengine'):
        MMLogger.get_instance('mmengine', log_level='WARNING')
    import mmaction_sttm  # noqa: F401
    from mmaction_sttm.analysis import complexity
    from mmaction_sttm.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.merge_from_dict(overrides)
    model = MODELS.build(cfg.model)
    size = cfg.crop_size
    result = complexity(model, (1, 3, 8, size, size))
    return dict(gflops=result['flops'] / 1e9, params_m=result['params'] / 1e6)


def _last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def _read_metrics(work_dir: str) -> Dict[str, float]:
    with open(osp.join(work_dir, 'test_metrics.json')) as f:
        metrics = json.load(f)
    return dict(top1=100 * metrics['acc/top1'],
                top5=100 * metrics['acc/top5'])


def run_study(args: argparse.Namespace) -> List[Dict]:
    """Train and test every (variant, seed); return one row per variant."""
    from mmaction_sttm.datasets.synthetic import (SyntheticSpec,
                                                  make_synthetic_dataset)
    data = osp.abspath(args.data)
    if args.smoke:
        spec = SyntheticSpec(num_classes=4, train_per_class=2,
                             val_per_class=1, resolution=32, num_frames=24)
    else:
        spec = SyntheticSpec(num_classes=8,
                             train_per_class=args.train_per_class,
                             val_per_class=args.val_per_class,
                             resolution=32, num_frames=24)
    if not osp.exists(osp.join(data, 'val_list_videos.txt')):
        make_synthetic_dataset(data, spec)
    epochs = 1 if args.smoke else args.epochs
    threads = max(1, (os.cpu_count() or 1) // args.jobs)

    def train_and_test(name: str, seed: int) -> Dict[str, float]:
        wd = osp.abspath(osp.join(args.work_dir, name, f'seed{seed}'))
        os.makedirs(wd, exist_ok=True)
        start = time.time()
        if args.resume and osp.exists(osp.join(wd, 'test_metrics.json')):
            return _read_metrics(wd)
        if name in OFF_THE_SHELF:
            source, overrides, _ = OFF_THE_SHELF[name]
            config = VARIANTS[source][0]
            opts = _options(overrides, data, epochs)
            ckpt = _last_checkpoint(
                osp.join(args.work_dir, source, f'seed{seed}'))
        else:
            config, overrides, _ = VARIANTS[name]
            opts = _options(overrides, data, epochs)
            _run([sys.executable, 'tools/train.py', config, '--work-dir', wd,
                  '--seed', str(seed), '--deterministic'] + opts,
                 osp.join(wd, 'train.log'), threads)
            ckpt = _last_checkpoint(wd)
        _run([sys.executable, 'tools/test.py', config, ckpt, '--work-dir',
              wd] + opts, osp.join(wd, 'test.log'), threads)
        result = _read_metrics(wd)
        print(f'{name} seed {seed}: top-1 {result["top1"]:.1f} '
              f'({time.time() - start:.0f} s)', flush=True)
        return result

    trained = [n for n in args.variants if n in VARIANTS]
    # Off-the-shelf variants need their source's checkpoint: train missing
    # sources first.
    sources = [OFF_THE_SHELF[n][0] for n in args.variants
               if n in OFF_THE_SHELF]
    trained += [n for n in dict.fromkeys(sources) if n not in trained]
    results = {}
    for group in (trained, [n for n in args.variants if n in OFF_THE_SHELF]):
        jobs = [(name, seed) for name in group for seed in args.seeds]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results.update(zip(jobs, pool.map(lambda j: train_and_test(*j),
                                              jobs)))
    rows = []
    for name in args.variants:
        if name in OFF_THE_SHELF:
            source, overrides, note = OFF_THE_SHELF[name]
            config = VARIANTS[source][0]
        else:
            config, overrides, note = VARIANTS[name]
        cost = _gflops(config, overrides)
        top1 = [results[(name, seed)]['top1'] for seed in args.seeds]
        top5 = [results[(name, seed)]['top5'] for seed in args.seeds]
        rows.append(dict(
            variant=name, note=note, gflops=cost['gflops'],
            params_m=cost['params_m'], seeds=len(top1),
            top1_mean=statistics.mean(top1),
            top1_std=statistics.stdev(top1) if len(top1) > 1 else 0.0,
            top5_mean=statistics.mean(top5), top1_all=top1))
    return rows


def write_results(rows: List[Dict], args: argparse.Namespace,
                  command: str) -> None:
    """Write ``study.md``, ``study.csv`` and ``study.png`` to ``args.out``."""
    os.makedirs(args.out, exist_ok=True)
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'],
                            cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or 'unknown'
    lines = [
        f'# {args.title}', '',
        f'Measured here with `{command}` at commit `{commit}`. '
        f'Seeds: {args.seeds}. Top-1/top-5 on the validation split, '
        '1 clip x 3 crops; GFLOPs per view at 1x3x8x32x32.', '',
        '| variant | reproduces | GFLOPs | params (M) | top-1 (mean +- std) '
        '| top-5 | top-1 per seed |',
        '| --- | --- | ---: | ---: | ---: | ---: | --- |'
    ]
    for r in rows:
        seeds = ', '.join(f'{v:.1f}' for v in r['top1_all'])
        lines.append(
            f'| {r["variant"]} | {r["note"]} | {r["gflops"]:.4f} | '
            f'{r["params_m"]:.3f} | {r["top1_mean"]:.1f} +- '
            f'{r["top1_std"]:.1f} | {r["top5_mean"]:.1f} | {seeds} |')
    with open(osp.join(args.out, f'{args.name}.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with open(osp.join(args.out, f'{args.name}.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        ax.errorbar(r['gflops'], r['top1_mean'], yerr=r['top1_std'],
                    fmt='o', capsize=3)
        ax.annotate(r['variant'], (r['gflops'], r['top1_mean']),
                    textcoords='offset points', xytext=(4, 4), fontsize=7)
    ax.set_xlabel('GFLOPs per view')
    ax.set_ylabel('top-1 (%)')
    ax.set_title('Synthetic motion dataset: top-1 against GFLOPs')
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(osp.join(args.out, f'{args.name}.png'), dpi=110)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    command = 'python tools/analysis/study.py ' + shlex.join(
        argv if argv is not None else sys.argv[1:])
    rows = run_study(args)
    write_results(rows, args, command.strip())
    print(f'results written to {args.out}')


if __name__ == '__main__':
    main()
