"""The confirmatory study: pre-registered, paired, on a held-out test split.

What is compared, on which seeds, with which tests and which decision rule
is fixed in ``docs/results/confirm/PROTOCOL.md`` and, for the tool, in
``configs/synthetic/confirm/protocol.py``. Another study with the same
design (the RLT study: ``--config-dir configs/synthetic/rlt_study``) has its
own config folder and ``protocol.py``, which names its results folder, data
folder and camera. Four commands:

- ``dev``: runs variants on the **dev** split only (200 videos, where
  readings and peers are chosen); records go to
  ``docs/results/confirm/dev/runs/``;
- ``run``: the confirmatory runs. Refuses a tree with uncommitted changes
  (``--allow-dirty`` runs anyway and marks every record ``dirty``); every
  run records the commit, its commands, its train / dev / **test** top-1
  and its per-epoch curve in ``docs/results/confirm/test/runs/``;
- ``report``: rebuilds every table and plot of ``docs/results/confirm/``
  from the committed records, training nothing;
- ``harvest``: copies the records of runs made in a worktree at the
  study's commit into this checkout, each marked with its block (the
  pre-trained checkpoint's and the data's SHA-256, this machine); run it
  on the machine that made the runs, then ``report``.

Examples::

    python tools/analysis_tools/confirm.py dev --variants vit sttm-r0.7 \\
        --seeds 0 1 2 --jobs 2 --resume
    python tools/analysis_tools/confirm.py run --jobs 2 --resume
    python tools/analysis_tools/confirm.py report
    python tools/analysis_tools/confirm.py harvest \\
        --source WT/docs/results/confirm --block B --data WT/data/study \\
        --pretrain WT/work_dirs/confirm/test/pretrain/vit/seed0/epoch_10.pth
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

from sttm_study.confirm import DirtyTreeError, harvest, run, write_report
from sttm_study.protocol import ProtocolError, load_protocol

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CONFIG_DIR = osp.join('configs', 'synthetic', 'confirm')
OUT = osp.join('docs', 'results', 'confirm')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('command', choices=('dev', 'run', 'report', 'harvest'))
    parser.add_argument(
        '--config-dir',
        default=CONFIG_DIR,
        help='the study\'s configs (finetune/ and pretrain/, or '
        'scratch/; protocol.py); default: the confirmatory '
        'study\'s')
    parser.add_argument(
        '--protocol',
        default=None,
        help='default: protocol.py of --config-dir')
    parser.add_argument(
        '--variants',
        nargs='+',
        default=None,
        help='dev: the variants to run (default: all '
        'configs of the regime); run: default the '
        'protocol\'s')
    parser.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        default=None,
        help='default: the protocol\'s seeds')
    parser.add_argument('--jobs', type=int, default=1)
    parser.add_argument(
        '--resume',
        action='store_true',
        help='reuse runs that already have a result')
    parser.add_argument(
        '--allow-dirty',
        action='store_true',
        help='run on a tree with uncommitted changes; each '
        'record says so')
    parser.add_argument(
        '--data-root',
        default=None,
        help='default: the protocol\'s data_root, or '
        'data/study')
    parser.add_argument('--work-dir', default='work_dirs/confirm')
    parser.add_argument(
        '--out',
        default=None,
        help=f'results folder; default: the protocol\'s '
        f'`out`, or {OUT}')
    parser.add_argument(
        '--smoke',
        action='store_true',
        help='seconds-long runs: tiny data, 1 epoch')
    harvest = parser.add_argument_group('harvest')
    harvest.add_argument(
        '--source',
        help='the results folder of the '
        'checkout that made the runs')
    harvest.add_argument('--stage', choices=('dev', 'test'), default='test')
    harvest.add_argument(
        '--block',
        help='name of the block (runs sharing '
        'one pre-trained backbone, data and machine)')
    harvest.add_argument(
        '--pretrain', help='the checkpoint those runs '
        'fine-tuned from')
    harvest.add_argument('--data', help='the data folder of those runs')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    path = osp.join(ROOT, args.protocol
                    or osp.join(args.config_dir, 'protocol.py'))
    if not osp.isfile(path):
        sys.exit(f'confirm.py: {osp.relpath(path, ROOT)}: no such protocol '
                 'config (--config-dir names a folder with protocol.py)')
    try:
        protocol = load_protocol(path)
    except ProtocolError as err:
        sys.exit(f'confirm.py: {err}')
    args.out = args.out or protocol.out or OUT
    if args.command == 'harvest':
        missing = [
            f'--{k}' for k in ('source', 'block', 'pretrain', 'data')
            if not getattr(args, k)
        ]
        if missing:
            sys.exit(f'confirm.py harvest: {", ".join(missing)} required')
        for name in (args.source, args.pretrain, args.data):
            if not osp.exists(name):
                sys.exit(f'confirm.py harvest: {name}: no such file or '
                         f'folder')
        for path in harvest(args.source, osp.join(ROOT, args.out), args.stage,
                            args.block, args.pretrain, args.data):
            print(f'harvested: {osp.relpath(path, ROOT)}')
    elif args.command != 'report':
        try:
            run(ROOT, args.config_dir, args, protocol,
                'dev' if args.command == 'dev' else 'test')
        except DirtyTreeError as error:
            sys.exit(f'confirm.py: {error}')
    for path in write_report(ROOT, args.config_dir, args.out, protocol):
        print(f'written: {path}')


if __name__ == '__main__':
    main()
