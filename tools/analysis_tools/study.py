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
validation (dev) split and on as many training videos (its train
accuracy, so that under- and over-fitting show), 1 clip x 3 crops each.
GFLOPs are counted per view at each config's own clip shape. The data, the
runs and the tables are :mod:`sttm_study` (the folder beside this tool);
this tool parses the arguments. Claims are made by the confirmatory study
(``tools/analysis_tools/confirm.py``), on a held-out test split.

Example (all variants: about 3 hours on 2 idle CPU cores; one fine-tune run
takes 3 to 5 minutes, a subset with ``--variants`` correspondingly less)::

    python tools/analysis_tools/study.py --regimes finetune ots scratch \\
        --seeds 0 1 2 --jobs 2 --out docs/results/study
"""
import argparse
import os.path as osp
import shlex
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional

from sttm_study.data import make_study_data
from sttm_study.records import load_record
from sttm_study.runner import StudyRunner, git_state
from sttm_study.tables import summarise, write_results
from sttm_study.variants import (REGIMES, Variant, count_complexity,
                                 load_variants)

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CONFIG_DIR = osp.join('configs', 'synthetic', 'study')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--regimes', nargs='+', default=list(REGIMES), choices=REGIMES)
    parser.add_argument(
        '--variants',
        nargs='+',
        default=None,
        help='only these variants (study.name, or '
        'regime/name); default: all of the regimes')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument(
        '--data-root',
        default='data/study',
        help='motion/ and shape/ datasets (generated when '
        'missing)')
    parser.add_argument('--work-dir', default='work_dirs/study')
    parser.add_argument('--out', default='docs/results/study')
    parser.add_argument(
        '--name', default='study', help='file stem of the table, CSV and plot')
    parser.add_argument(
        '--title', default='Ablation study on the synthetic '
        'motion dataset')
    parser.add_argument(
        '--jobs',
        type=int,
        default=1,
        help='runs at a time, each with cores / jobs threads '
        '(small models use cores better this way)')
    parser.add_argument(
        '--resume',
        action='store_true',
        help='reuse runs that already have test metrics')
    parser.add_argument(
        '--smoke',
        action='store_true',
        help='seconds-long run: tiny data, 1 epoch')
    parser.add_argument(
        '--report-only',
        action='store_true',
        help='train nothing: write the table from the '
        'finished runs in --work-dir (a seed not run shows '
        'as such; a variant with none is left out)')
    return parser.parse_args(argv)


def _runner(args: argparse.Namespace, data) -> StudyRunner:
    return StudyRunner(
        ROOT,
        CONFIG_DIR,
        data,
        args.work_dir,
        jobs=args.jobs,
        resume=args.resume or args.report_only,
        cfg_options={'train_cfg.max_epochs': 1} if args.smoke else None)


def run_study(args: argparse.Namespace) -> List[Variant]:
    """Train and test every (variant, seed); count each variant's GFLOPs."""
    variants = load_variants(ROOT, CONFIG_DIR, args.regimes, args.variants)
    if not variants:
        raise ValueError('no study configs selected')
    # Off-the-shelf variants test a fine-tuned source of the same seed.
    finetuned = {v.name for v in variants if v.regime == 'finetune'}
    for source in {v.source for v in variants if v.regime == 'ots'}:
        if source not in finetuned:
            variants += load_variants(ROOT, CONFIG_DIR, ['finetune'], [source])
            finetuned.add(source)
    if args.report_only:
        variants = _finished(variants, args)
    else:
        runner = _runner(args, make_study_data(args.data_root, args.smoke))
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
        count_complexity(ROOT, variant)
    return variants


def _finished(variants: List[Variant],
              args: argparse.Namespace) -> List[Variant]:
    """The variants with at least one finished run, with those runs."""
    runner = _runner(args, None)
    for variant in variants:
        for seed in args.seeds:
            done = osp.join(
                runner.work_dir(variant.regime, variant.name, seed),
                'study_result.json')
            if osp.exists(done):
                variant.results[seed] = load_record(done)
    variants = [v for v in variants if v.results]
    if not variants:
        raise ValueError(f'--report-only: no finished run in '
                         f'{args.work_dir}')
    return variants


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    command = 'python tools/analysis_tools/study.py ' + shlex.join(
        argv if argv is not None else sys.argv[1:])
    variants = run_study(args)
    state = git_state(ROOT)
    write_results(
        summarise(variants,
                  args.seeds), args.out, args.name, args.title, args.seeds,
        command.strip(), state['commit'][:7] + ('+' if state['dirty'] else ''))
    print(f'results written to {args.out}')


if __name__ == '__main__':
    main()
