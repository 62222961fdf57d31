"""The confirmatory study: pre-registered, paired, on a held-out test split.

What is compared, on which seeds, with which tests and which decision rule
is fixed in ``docs/results/confirm/PROTOCOL.md`` and, for the tool, in
``configs/synthetic/confirm/protocol.py``. Another study with the same
design (the RLT study: ``--config-dir configs/synthetic/rlt_study``) has its
own config folder and ``protocol.py``, which names its results folder, data
folder and camera. Three commands:

- ``dev``: runs variants on the **dev** split only (200 videos, where
  readings and peers are chosen); records go to
  ``docs/results/confirm/dev/runs/``;
- ``run``: the confirmatory runs. Refuses a tree with uncommitted changes
  (``--allow-dirty`` runs anyway and marks every record ``dirty``); every
  run records the commit, its commands, its train / dev / **test** top-1
  and its per-epoch curve in ``docs/results/confirm/test/runs/``;
- ``report``: rebuilds every table and plot of ``docs/results/confirm/``
  from the committed records, training nothing.

Examples::

    python tools/analysis/confirm.py dev --variants vit sttm-r0.7 \\
        --seeds 0 1 2 --jobs 2 --resume
    python tools/analysis/confirm.py run --jobs 2 --resume
    python tools/analysis/confirm.py report
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

from mmaction_sttm.study.confirm import (DirtyTreeError, load_protocol, run,
                                         write_report)

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CONFIG_DIR = osp.join('configs', 'synthetic', 'confirm')
OUT = osp.join('docs', 'results', 'confirm')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('command', choices=('dev', 'run', 'report'))
    parser.add_argument('--config-dir', default=CONFIG_DIR,
                        help='the study\'s configs (finetune/ and pretrain/, or '
                        'scratch/; protocol.py); default: the confirmatory '
                        'study\'s')
    parser.add_argument('--protocol', default=None,
                        help='default: protocol.py of --config-dir')
    parser.add_argument('--variants', nargs='+', default=None,
                        help='dev: the variants to run (default: all '
                        'configs of the regime); run: default the '
                        'protocol\'s')
    parser.add_argument('--seeds', type=int, nargs='+', default=None,
                        help='default: the protocol\'s seeds')
    parser.add_argument('--jobs', type=int, default=1)
    parser.add_argument('--resume', action='store_true',
                        help='reuse runs that already have a result')
    parser.add_argument('--allow-dirty', action='store_true',
                        help='run on a tree with uncommitted changes; each '
                        'record says so')
    parser.add_argument('--data-root', default=None,
                        help='default: the protocol\'s data_root, or '
                        'data/study')
    parser.add_argument('--work-dir', default='work_dirs/confirm')
    parser.add_argument('--out', default=None,
                        help=f'results folder; default: the protocol\'s '
                        f'`out`, or {OUT}')
    parser.add_argument('--smoke', action='store_true',
                        help='seconds-long runs: tiny data, 1 epoch')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    protocol = load_protocol(osp.join(
        ROOT, args.protocol or osp.join(args.config_dir, 'protocol.py')))
    args.out = args.out or protocol.get('out', OUT)
    if args.command != 'report':
        try:
            run(ROOT, args.config_dir, args, protocol,
                'dev' if args.command == 'dev' else 'test')
        except DirtyTreeError as error:
            sys.exit(f'confirm.py: {error}')
    for path in write_report(ROOT, args.config_dir, args.out, protocol):
        print(f'written: {path}')


if __name__ == '__main__':
    main()
