"""The ablation study on the synthetic motion dataset, in the paper's regimes.

Every variant is a config under ``configs/synthetic/study/``; its ``study``
dict says what it is. The folder is the regime:

- ``pretrain/``: the frame-level pre-training (the analogue of ImageNet-1K):
  the backbone learns the marked object's shape and quadrant on still scenes
  of the same renderer (``task='shape'``);
- ``finetune/``: (b) a merger inserted into that pre-trained backbone, then
  the whole model fine-tuned on the motion classes, the paper's regime;
  also (e), more input frames at the baseline's GFLOPs (paper Table 7);
- ``ots/``: (c) off the shelf, a merger inserted into the fine-tuned
  baseline and tested with no training (``study.source`` names the
  baseline);
- ``scratch/``: (d) trained from scratch on the motion classes.

For each seed, pre-training runs first (the fine-tune configs load its
backbone through ``model.backbone.init_cfg``), then the trained variants,
then the off-the-shelf ones. Each run goes through the project's own
``tools/train.py`` and ``tools/test.py``; its checkpoint is tested on the
validation split (1 clip x 3 crops); its train accuracy is measured on as
many training videos (1 centre crop), so under- and over-fitting show. GFLOPs are counted
per view at each config's own clip shape.

Example (all variants: about 3 hours on 2 idle CPU cores; one fine-tune run
takes 3 to 5 minutes, a subset with ``--variants`` correspondingly less)::

    python tools/analysis/study.py --regimes finetune ots scratch \\
        --seeds 0 1 2 --jobs 2 --out docs/results/study
"""
import argparse
import csv
import glob
import json
import os
import os.path as osp
import shlex
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, ROOT)

CONFIG_DIR = osp.join('configs', 'synthetic', 'study')
REGIMES = ('finetune', 'ots', 'scratch')
TITLES = {
    'finetune': '(b) Pre-trained backbone, merger inserted, fine-tuned',
    'ots': '(c) Off the shelf: merger inserted into the fine-tuned '
    'baseline, no training',
    'scratch': '(d) From scratch',
}


@dataclass
class Variant:
    """One config of the study."""
    regime: str
    name: str
    config: str
    note: str
    curve: str
    source: Optional[str] = None
    gflops: float = 0.0
    params_m: float = 0.0
    results: Dict[int, Dict[str, float]] = field(default_factory=dict)


def load_variants(regimes: Sequence[str],
                  names: Optional[Sequence[str]] = None) -> List[Variant]:
    """The study configs of ``regimes`` (all, or those in ``names``)."""
    from mmengine.config import Config
    variants = []
    for regime in regimes:
        paths = sorted(glob.glob(osp.join(ROOT, CONFIG_DIR, regime, '*.py')))
        for path in paths:
            study = Config.fromfile(path).get('study')
            if study is None:
                raise ValueError(f'{path}: a study config needs a `study` '
                                 'dict (name, note, curve)')
            name = study['name']
            if names and name not in names and \
                    f'{regime}/{name}' not in names:
                continue
            variants.append(
                Variant(regime, name, osp.relpath(path, ROOT),
                        study.get('note', ''), study.get('curve', name),
                        study.get('source')))
    if names:
        known = {v.name for v in variants} | \
            {f'{v.regime}/{v.name}' for v in variants}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f'--variants: unknown {unknown}')
    return variants


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--regimes', nargs='+', default=list(REGIMES),
                        choices=REGIMES)
    parser.add_argument('--variants', nargs='+', default=None,
                        help='only these variants (study.name, or '
                        'regime/name); default: all of the regimes')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--data-root', default='data/study',
                        help='motion/ and shape/ datasets (generated when '
                        'missing)')
    parser.add_argument('--work-dir', default='work_dirs/study')
    parser.add_argument('--out', default='docs/results/study')
    parser.add_argument('--name', default='study',
                        help='file stem of the table, CSV and plot')
    parser.add_argument('--title', default='Ablation study on the synthetic '
                        'motion dataset')
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs at a time, each with cores / jobs threads '
                        '(small models use cores better this way)')
    parser.add_argument('--resume', action='store_true',
                        help='reuse runs that already have test metrics')
    parser.add_argument('--smoke', action='store_true',
                        help='seconds-long run: tiny data, 1 epoch')
    parser.add_argument('--report-only', action='store_true',
                        help='train nothing: write the table from the '
                        'finished runs in --work-dir (a seed not run shows '
                        'as such; a variant with none is left out)')
    return parser.parse_args(argv)


# -- datasets ---------------------------------------------------------------


def make_datasets(data_root: str, smoke: bool) -> Dict[str, str]:
    """Generate the study's motion and shape datasets when missing."""
    from mmaction_sttm.generators import (SHAPE_CLASSES, SyntheticSpec,
                                          make_synthetic_dataset)
    common = dict(resolution=32, num_frames=24, num_distractors=2)
    if smoke:
        specs = dict(
            motion=SyntheticSpec(num_classes=10, train_per_class=1,
                                 val_per_class=1, **common),
            shape=SyntheticSpec(num_classes=len(SHAPE_CLASSES),
                                train_per_class=1, val_per_class=1,
                                task='shape', **common))
    else:
        specs = dict(
            motion=SyntheticSpec(num_classes=10, train_per_class=160,
                                 val_per_class=20, **common),
            shape=SyntheticSpec(num_classes=len(SHAPE_CLASSES),
                                train_per_class=120, val_per_class=20,
                                task='shape', **common))
    roots = {}
    for task, spec in specs.items():
        root = osp.abspath(osp.join(data_root, task))
        if not osp.exists(osp.join(root, 'val_list_videos.txt')):
            make_synthetic_dataset(root, spec)
        # As many training videos as validation ones, for train accuracy.
        with open(osp.join(root, 'val_list_videos.txt')) as f:
            count = sum(1 for line in f if line.strip())
        with open(osp.join(root, 'train_list_videos.txt')) as f:
            lines = [line for line in f if line.strip()][:count]
        with open(osp.join(root, 'train_subset_list_videos.txt'), 'w') as f:
            f.writelines(lines)
        roots[task] = root
    return roots


# -- running the tools -----------------------------------------------------


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


def _data_options(root: str, test_list: str = 'val') -> Dict[str, str]:
    opts = {}
    for split, ann in (('train', 'train'), ('val', 'val'),
                       ('test', test_list)):
        opts[f'{split}_dataloader.dataset.ann_file'] = osp.join(
            root, f'{ann}_list_videos.txt')
        opts[f'{split}_dataloader.dataset.data_prefix.video'] = osp.join(
            root, 'videos')
    return opts


def _cli(opts: Dict[str, object]) -> List[str]:
    return ['--cfg-options'] + [f'{k}={v}' for k, v in opts.items()]


def _last_checkpoint(work_dir: str) -> str:
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def _read_metrics(work_dir: str) -> Dict[str, float]:
    with open(osp.join(work_dir, 'test_metrics.json')) as f:
        metrics = json.load(f)
    return dict(top1=100 * metrics['acc/top1'],
                top5=100 * metrics['acc/top5'])


def _commit() -> str:
    """The checked-out commit (``+`` if the tree has changes)."""
    def git(*cmd: str) -> str:
        return subprocess.run(['git', *cmd], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip()
    dirty = git('status', '--porcelain', '--untracked-files=no')
    return (git('rev-parse', '--short', 'HEAD') or 'unknown') + \
        ('+' if dirty else '')


def _last_val_metrics(work_dir: str) -> Dict[str, float]:
    """The last validation metrics a training run logged (MMEngine's
    ``vis_data/scalars.json`` of its newest timestamped folder)."""
    logs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                     'scalars.json')))
    last = None
    with open(logs[-1]) as f:
        for line in f:
            record = json.loads(line)
            if 'acc/top1' in record:
                last = record
    if last is None:
        raise RuntimeError(f'{logs[-1]}: the run logged no validation')
    return dict(top1=100 * last['acc/top1'], top5=100 * last['acc/top5'])


class StudyRunner:
    """Trains and tests the variants of one study.

    A trained variant validates on the training subset at its last epoch
    (its train accuracy, 1 centre crop) and is then tested on the
    validation split with ``tools/test.py`` (1 clip x 3 crops); an
    off-the-shelf one is tested on both.
    """

    def __init__(self, args: argparse.Namespace,
                 data: Dict[str, str]) -> None:
        self.args = args
        self.data = data
        self.threads = max(1, (os.cpu_count() or 1) // args.jobs)
        self.epochs = {'train_cfg.max_epochs': 1} if args.smoke else {}
        self.pretrained: Dict[int, str] = {}

    def work_dir(self, regime: str, name: str, seed: int) -> str:
        return osp.abspath(
            osp.join(self.args.work_dir, regime, name, f'seed{seed}'))

    def _train(self, config: str, wd: str, seed: int, data: str,
               opts: Dict[str, object]) -> str:
        """Train ``config`` (validating on the training subset); return
        its last checkpoint."""
        opts = dict(opts, **_data_options(data), **self.epochs)
        for key in ('ann_file', 'data_prefix.video'):
            opts[f'val_dataloader.dataset.{key}'] = \
                opts[f'test_dataloader.dataset.{key}']
        opts['val_dataloader.dataset.ann_file'] = osp.join(
            data, 'train_subset_list_videos.txt')
        _run([sys.executable, 'tools/train.py', config, '--work-dir', wd,
              '--seed', str(seed), '--deterministic'] + _cli(opts),
             osp.join(wd, 'train.log'), self.threads)
        return _last_checkpoint(wd)

    def pretrain(self, seed: int) -> str:
        """Pre-train the backbone of ``seed`` on the shape task (once);
        return its checkpoint."""
        if seed not in self.pretrained:
            config = glob.glob(
                osp.join(ROOT, CONFIG_DIR, 'pretrain', '*.py'))[0]
            wd = self.work_dir('pretrain', 'vit', seed)
            os.makedirs(wd, exist_ok=True)
            if self.args.resume and osp.exists(
                    osp.join(wd, 'last_checkpoint')):
                self.pretrained[seed] = _last_checkpoint(wd)
            else:
                self.pretrained[seed] = self._train(
                    config, wd, seed, self.data['shape'], {})
        return self.pretrained[seed]

    def _test(self, config: str, ckpt: str, wd: str, test_list: str,
              opts: Dict[str, object]) -> Dict[str, float]:
        os.makedirs(wd, exist_ok=True)
        opts = dict(opts, **_data_options(self.data['motion'], test_list))
        _run([sys.executable, 'tools/test.py', config, ckpt, '--work-dir',
              wd] + _cli(opts), osp.join(wd, 'test.log'), self.threads)
        return _read_metrics(wd)

    def run(self, variant: Variant, seed: int) -> Dict[str, float]:
        wd = self.work_dir(variant.regime, variant.name, seed)
        os.makedirs(wd, exist_ok=True)
        done = osp.join(wd, 'study_result.json')
        if self.args.resume and osp.exists(done):
            with open(done) as f:
                return json.load(f)
        start = time.time()
        opts: Dict[str, object] = {}
        if variant.regime == 'ots':
            ckpt = _last_checkpoint(
                self.work_dir('finetune', variant.source, seed))
            train = self._test(variant.config, ckpt,
                               osp.join(wd, 'train_eval'), 'train_subset',
                               opts)
        else:
            if variant.regime == 'finetune':
                opts['model.backbone.init_cfg.checkpoint'] = \
                    self.pretrain(seed)
            ckpt = self._train(variant.config, wd, seed,
                               self.data['motion'], opts)
            train = _last_val_metrics(wd)
        val = self._test(variant.config, ckpt, wd, 'val', opts)
        result = dict(val_top1=val['top1'], val_top5=val['top5'],
                      train_top1=train['top1'], train_top5=train['top5'],
                      seconds=time.time() - start, commit=_commit())
        with open(done, 'w') as f:
            json.dump(result, f)
        print(f'{variant.regime}/{variant.name} seed {seed}: val top-1 '
              f'{result["val_top1"]:.1f}, train top-1 '
              f'{result["train_top1"]:.1f} ({result["seconds"]:.0f} s)',
              flush=True)
        return result


def _complexity(variant: Variant) -> None:
    """GFLOPs per view and params of a variant at its own clip shape."""
    from mmengine.config import Config
    from mmengine.logging import MMLogger
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    if not MMLogger.check_instance_created('mmengine'):
        MMLogger.get_instance('mmengine', log_level='WARNING')
    import mmaction_sttm  # noqa: F401
    from mmaction_sttm.analysis import complexity
    from mmaction_sttm.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, variant.config))
    cfg.model.backbone.pop('init_cfg', None)
    sample = [s for s in cfg.test_pipeline if s['type'] == 'SampleFrames'][0]
    model = MODELS.build(cfg.model)
    shape = (1, 3, sample['clip_len'], cfg.crop_size, cfg.crop_size)
    result = complexity(model, shape)
    variant.gflops = result['flops'] / 1e9
    variant.params_m = result['params'] / 1e6


def run_study(args: argparse.Namespace) -> List[Variant]:
    """Train and test every (variant, seed)."""
    variants = load_variants(args.regimes, args.variants)
    if not variants:
        raise ValueError('no study configs selected')
    # Off-the-shelf variants test a fine-tuned source of the same seed.
    finetuned = {v.name for v in variants if v.regime == 'finetune'}
    for source in {v.source for v in variants if v.regime == 'ots'}:
        if source not in finetuned:
            variants += load_variants(['finetune'], [source])
            finetuned.add(source)
    if args.report_only:
        return _finished(variants, args)
    data = make_datasets(args.data_root, args.smoke)
    runner = StudyRunner(args, data)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        if any(v.regime == 'finetune' for v in variants):
            list(pool.map(runner.pretrain, args.seeds))
        for stage in (('finetune', 'scratch'), ('ots', )):
            jobs = [(v, s) for v in variants if v.regime in stage
                    for s in args.seeds]
            for (variant, seed), result in zip(
                    jobs, pool.map(lambda job: runner.run(*job), jobs)):
                variant.results[seed] = result
    for variant in variants:
        _complexity(variant)
    return variants


def _finished(variants: List[Variant],
              args: argparse.Namespace) -> List[Variant]:
    """The variants with at least one finished run, with those runs."""
    runner = StudyRunner(args, {})
    for variant in variants:
        for seed in args.seeds:
            done = osp.join(runner.work_dir(variant.regime, variant.name,
                                            seed), 'study_result.json')
            if osp.exists(done):
                with open(done) as f:
                    variant.results[seed] = json.load(f)
    variants = [v for v in variants if v.results]
    if not variants:
        raise ValueError(f'--report-only: no finished run in '
                         f'{args.work_dir}')
    for variant in variants:
        _complexity(variant)
    return variants


# -- results ---------------------------------------------------------------


def _stats(values: List[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{statistics.mean(values):.1f} +- {std:.1f}'


def summarise(variants: List[Variant],
              seeds: Optional[Sequence[int]] = None) -> List[Dict]:
    """One row per variant: GFLOPs (and against its regime's baseline),
    val and train top-1 (mean, std, per seed).

    Args:
        variants (list[Variant]): variants with their results.
        seeds (Sequence[int], optional): the seeds asked for; one of them
            without a result shows as ``not run``. Defaults to the seeds
            each variant has.

    Returns:
        list[dict]: one row per variant, baselines first.
    """
    rows = []
    for v in sorted(variants, key=lambda v: v.curve != 'baseline'):
        have = sorted(v.results)
        val = [v.results[s]['val_top1'] for s in have]
        train = [v.results[s]['train_top1'] for s in have]
        rows.append(dict(
            regime=v.regime, variant=v.name, curve=v.curve, note=v.note,
            config=v.config, gflops=v.gflops, params_m=v.params_m,
            seeds=len(have),
            val_top1_mean=statistics.mean(val),
            val_top1_std=statistics.stdev(val) if len(val) > 1 else 0.0,
            train_top1_mean=statistics.mean(train),
            train_top1_std=statistics.stdev(train) if len(train) > 1
            else 0.0,
            val_top1_per_seed=' '.join(
                f'{v.results[s]["val_top1"]:.1f}' if s in v.results else
                'not-run' for s in (have if seeds is None else seeds)),
            commits=' '.join(sorted({v.results[s].get('commit', '?')
                                     for s in have}))))
    return rows


def write_results(rows: List[Dict], args: argparse.Namespace,
                  command: str) -> None:
    """Write ``NAME.md``, ``NAME.csv`` and ``NAME.png`` to ``args.out``."""
    os.makedirs(args.out, exist_ok=True)
    commit = _commit()
    lines = [
        f'# {args.title}', '',
        f'Measured here with `{command}`; table written at commit '
        f'`{commit}`, each run at the commit in the CSV (`commits`). '
        f'Seeds: {args.seeds}. Top-1 in %, mean +- std over seeds: val on '
        'the validation split with 1 clip x 3 crops, train on as many '
        'training videos with 1 centre crop. GFLOPs per view at each config\'s '
        'clip shape (1x3xTx32x32).', ''
    ]
    for regime in REGIMES:
        part = [r for r in rows if r['regime'] == regime]
        if not part:
            continue
        base = next((r['gflops'] for r in part if r['curve'] == 'baseline'),
                    None)
        lines += [
            f'## {TITLES[regime]}', '',
            '| variant | what it is | GFLOPs | vs baseline | params (M) '
            '| val top-1 | train top-1 | val per seed |',
            '| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |'
        ]
        for r in part:
            saving = (f'{100 * (r["gflops"] / base - 1):+.1f}%'
                      if base else '')
            lines.append(
                f'| {r["variant"]} | {r["note"]} | {r["gflops"]:.5f} | '
                f'{saving} | {r["params_m"]:.3f} | '
                f'{r["val_top1_mean"]:.1f} +- {r["val_top1_std"]:.1f} | '
                f'{r["train_top1_mean"]:.1f} +- {r["train_top1_std"]:.1f} | '
                f'{r["val_top1_per_seed"]} |')
        lines.append('')
    lines.append(f'![val top-1 against GFLOPs]({args.name}.png)')
    with open(osp.join(args.out, f'{args.name}.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with open(osp.join(args.out, f'{args.name}.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, osp.join(args.out, f'{args.name}.png'))


def plot(rows: List[Dict], path: str) -> None:
    """Val top-1 against GFLOPs, one curve per merger, per regime.

    Where a regime has curves (variants sharing ``study.curve`` at several
    GFLOPs), the single-point variants (readings, trends) are drawn as grey
    crosses under one legend entry; the table names them."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    regimes = [r for r in REGIMES if any(x['regime'] == r for x in rows)]
    fig, axes = plt.subplots(1, len(regimes), figsize=(6 * len(regimes), 4.5),
                             squeeze=False)
    for ax, regime in zip(axes[0], regimes):
        part = [r for r in rows if r['regime'] == regime]
        curves = {}
        for r in part:
            curves.setdefault(r['curve'], []).append(r)
        has_curves = any(len(p) > 1 for p in curves.values())
        singles_labelled = False
        for curve, points in curves.items():
            points.sort(key=lambda r: r['gflops'])
            style, label, color = 'o-', curve, None
            if curve == 'baseline':
                style = 'k*'
            elif has_curves and len(points) == 1:
                style, color = 'x', '0.55'
                label = None if singles_labelled else \
                    'single-point ablations (table)'
                singles_labelled = True
            ax.errorbar([p['gflops'] for p in points],
                        [p['val_top1_mean'] for p in points],
                        yerr=[p['val_top1_std'] for p in points],
                        fmt=style, capsize=3, label=label, markersize=6,
                        color=color)
        if has_curves:
            # The curves' range: a collapsed reading far below would squash
            # them (the table has it).
            shown = [r['val_top1_mean'] for c, p in curves.items()
                     if len(p) > 1 or c == 'baseline' for r in p]
            ax.set_ylim(min(shown) - 8, max(shown) + 6)
        ax.set_title(TITLES[regime].split(':')[0], fontsize=9)
        ax.set_xlabel('GFLOPs per view')
        ax.set_ylabel('val top-1 (%)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    command = 'python tools/analysis/study.py ' + shlex.join(
        argv if argv is not None else sys.argv[1:])
    variants = run_study(args)
    write_results(summarise(variants, args.seeds), args, command.strip())
    print(f'results written to {args.out}')


if __name__ == '__main__':
    main()
