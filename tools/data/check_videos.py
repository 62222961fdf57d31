"""Find the videos of an annotation list that decord cannot use.

Scans an MMAction2 video list (``path label`` per line, as read by
``VideoDataset``): each video must exist, be non-empty, open in decord with
at least ``--min-frames`` frames, and decode ``--num-decode`` frames (first to
last) to one size (``--frame-size`` if given)::

    python tools/data/check_videos.py \
        data/kinetics400/kinetics400_val_list_videos.txt \
        data/kinetics400/videos_val --out bad_val.tsv --workers 8

The bad entries are written to ``--out`` (``path<TAB>kind<TAB>detail``, the
path as in the list), a summary by kind is printed, and ``--clean-out`` writes
the list without them. The exit code is 0, or 1 with ``--strict`` when there
are bad entries (for CI or data-preparation scripts). The same checks run in
``RobustVideoDataset`` (``mmaction_sttm/datasets/robust.py``); see
docs/reliability.md.
"""
import argparse
import collections
import importlib.util
import os
import os.path as osp
import sys
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import List, Optional, Sequence, Tuple

from tqdm import tqdm


def _load_video_probe() -> ModuleType:
    """``mmaction_sttm/datasets/video_probe.py``, loaded on its own.

    Importing it through the package would first import the package's
    models (torch, MMAction2): about 20 times the start-up time of this scan
    for code it never runs. The module depends on nothing of the package.
    """
    path = osp.join(
        osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
        'mmaction_sttm', 'datasets', 'video_probe.py')
    spec = importlib.util.spec_from_file_location('_video_probe', path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _load_cli() -> ModuleType:
    """``mmaction_sttm/cli.py`` (the tools' one-line errors), loaded on its
    own for the same reason."""
    path = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..',
                    'mmaction_sttm', 'cli.py')
    spec = importlib.util.spec_from_file_location('_sttm_cli', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_probe = _load_video_probe()
cli = _load_cli()
PROBLEM_KINDS = _probe.PROBLEM_KINDS
VideoProblem = _probe.VideoProblem
probe_video = _probe.probe_video
quiet_stderr = _probe.quiet_stderr

Entry = Tuple[str, str]  # (path as listed, the whole line)


def read_entries(ann_file: str, delimiter: Optional[str] = None
                 ) -> List[Entry]:
    """The entries of a video list, as ``VideoDataset`` reads them.

    Args:
        ann_file (str): The list, ``path [label ...]`` per line.
        delimiter (str, optional): Field separator; None splits on any
            whitespace.

    Returns:
        list[tuple[str, str]]: ``(path, line)`` per non-empty line.
    """
    entries = []
    with open(ann_file) as f:
        for line in f:
            line = line.rstrip('\n')
            if not line.strip():
                continue
            entries.append((line.strip().split(delimiter)[0], line))
    return entries


def video_path(root: str, path: str) -> str:
    """The file ``DecordInit`` reads for ``path`` under ``root``."""
    full = osp.join(root, path)
    # DecordInit appends ".mp4" to a name without an extension.
    return full + '.mp4' if osp.splitext(full)[0] == full else full


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Find the videos of an MMAction2 video list that '
        'cannot be decoded.')
    parser.add_argument('ann_file', help='video list (path label per line)')
    parser.add_argument(
        'root', help="folder the paths are relative to (the config's "
        'data_prefix.video)')
    parser.add_argument(
        '--out', help='write the bad entries here (path<TAB>kind<TAB>detail)')
    parser.add_argument(
        '--clean-out', help='write the list without the bad entries here')
    parser.add_argument(
        '--workers',
        type=int,
        default=4,
        help='parallel decoding threads (decord releases the GIL); '
        'default 4')
    parser.add_argument(
        '--min-frames',
        type=int,
        default=2,
        help='fewest frames of a usable video (default 2: a 1-frame file '
        'is a still image)')
    parser.add_argument(
        '--frame-size',
        type=int,
        nargs=2,
        metavar=('HEIGHT', 'WIDTH'),
        help='expected decoded frame size; default: any, if consistent')
    parser.add_argument(
        '--num-decode',
        type=int,
        default=3,
        help='frames to decode per video, first to last (default 3; 0 only '
        'opens the file)')
    parser.add_argument(
        '--delimiter',
        default=None,
        help='field separator of the list (default: whitespace)')
    parser.add_argument(
        '--strict',
        action='store_true',
        help='exit with 1 when there are bad entries')
    parser.add_argument(
        '--no-progress', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error('--workers must be >= 1')
    if args.min_frames < 1:
        parser.error('--min-frames must be >= 1')
    return args


def check_entries(entries: Sequence[Entry],
                  root: str,
                  workers: int = 4,
                  min_frames: int = 2,
                  frame_size: Optional[Sequence[int]] = None,
                  num_decode: int = 3,
                  progress: bool = True
                  ) -> List[Optional[VideoProblem]]:
    """Probe every entry (see :func:`probe_video`).

    Returns:
        list[VideoProblem or None]: One result per entry, in order.
    """

    def check(entry: Entry) -> Optional[VideoProblem]:
        return probe_video(
            video_path(root, entry[0]), min_frames, frame_size, num_decode)

    # FFmpeg writes a line per broken file to fd 2, which would bury the
    # progress bar: silence fd 2 and give the bar a copy of the original.
    bar_fd = os.dup(2)
    with os.fdopen(bar_fd, 'w') as bar_file, quiet_stderr(), \
            ThreadPoolExecutor(workers) as pool:
        results = list(
            tqdm(
                pool.map(check, entries),
                total=len(entries),
                desc='checking videos',
                unit='video',
                file=bar_file,
                disable=not progress))
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the scan; returns the exit code."""
    args = parse_args(argv)
    cli.require_file(args.ann_file, 'video list')
    cli.require_dir(args.root, 'video root')
    entries = read_entries(args.ann_file, args.delimiter)
    results = check_entries(entries, args.root, args.workers,
                            args.min_frames, args.frame_size, args.num_decode,
                            not args.no_progress)
    bad = [(entry, problem) for entry, problem in zip(entries, results)
           if problem is not None]
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.writelines(f'{path}\t{problem.kind}\t{problem.detail}\n'
                         for (path, _), problem in bad)
    if args.clean_out:
        os.makedirs(osp.dirname(osp.abspath(args.clean_out)), exist_ok=True)
        with open(args.clean_out, 'w') as f:
            f.writelines(f'{line}\n'
                         for (_, line), problem in zip(entries, results)
                         if problem is None)

    for (path, _), problem in bad[:20]:
        print(f'BAD {path}: {problem}')
    if len(bad) > 20:
        print(f'... and {len(bad) - 20} more'
              + (f' (all in {args.out})' if args.out else ''))
    kinds = collections.Counter(problem.kind for _, problem in bad)
    by_kind = ', '.join(f'{kinds[k]} {k}' for k in PROBLEM_KINDS if kinds[k])
    print(f'checked {len(entries)} videos of {args.ann_file}: '
          f'{len(entries) - len(bad)} ok, {len(bad)} bad'
          + (f' ({by_kind})' if bad else ''))
    if args.out:
        print(f'bad entries written to {args.out}')
    if args.clean_out:
        print(f'{len(entries) - len(bad)} good entries written to '
              f'{args.clean_out}')
    return 1 if (args.strict and bad) else 0


if __name__ == '__main__':
    cli.run(main)
