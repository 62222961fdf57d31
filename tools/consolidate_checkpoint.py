"""Consolidate a sharded FSDP checkpoint into one file.

A run whose strategy saves sharded state dicts
(``configs/_base_/strategies/fsdp_bf16-cp_sharded-state.py``) writes each
checkpoint as a folder of ``rank{i}.pth`` files. This writes the single
checkpoint file that ``tools/test.py``, ``load_from`` and the converters
read (the model's weights, ``meta`` and ``message_hub``; resume a run from
the folder itself)::

    python tools/consolidate_checkpoint.py \
        work_dirs/my_run/epoch_30.pth work_dirs/my_run/epoch_30_full.pth

It starts one CPU process per rank file (gloo), whatever the machine the
run trained on.
"""
import argparse
from typing import List, Optional

from mmaction_sttm import tooling
from mmaction_sttm.engine.fsdp import consolidate_sharded_checkpoint


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Consolidate a sharded FSDP checkpoint into one file')
    parser.add_argument(
        'src', help='sharded checkpoint folder (of rank{i}.pth files)')
    parser.add_argument('dst_file', metavar='DST', help='output checkpoint')
    tooling.add_traceback_flag(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    tooling.require_dir(args.src, 'sharded checkpoint folder')
    try:
        consolidate_sharded_checkpoint(args.src, args.dst_file)
    except ValueError as error:
        raise tooling.ToolError(tooling.error_line(error)) from error
    print(f'{args.src} -> {args.dst_file}')


if __name__ == '__main__':
    tooling.run(main)
