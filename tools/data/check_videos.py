"""Find the videos of an annotation list that no decoder can use.

Scans an MMAction2 video list (``path label`` per line, as read by
``VideoDataset``) with each decoder of the pipelines' fallback (the decoders
of ``DecodeWithFallback``, ``mmaction_sttm/datasets/transforms.py``:
MMAction2's decord, PyAV and OpenCV transforms): each video must exist, be
non-empty, open with at least ``--min-frames`` frames, and decode
``--num-decode`` frames (first to last) to one size (``--frame-size`` if
given)::

    python tools/data/check_videos.py \
        data/kinetics400/kinetics400_val_list_videos.txt \
        data/kinetics400/videos_val --out bad_val.tsv --report decoders.tsv

``--report`` gets, per file, which decoders read it
(``path<TAB>decord<TAB>pyav<TAB>opencv``, each ``ok`` or the problem's
kind). The files that no decoder reads, which ``RobustVideoDataset`` would
replace or exclude, are written to ``--out`` (``path<TAB>kind<TAB>detail``,
the path as in the list, the kind and detail of the first decoder's problem
with all decoders' details) and ``--clean-out`` writes the list without them.
The exit code is 0, or 1 with ``--strict`` when there are such files. See
docs/reliability.md.
"""
import argparse
import collections
import logging
import os
import os.path as osp
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence, Tuple

from tqdm import tqdm

from mmaction_sttm import tooling
from mmaction_sttm.datasets.decoders import (BUILTIN_DECODERS, Decoder,
                                             DecoderChain, probe_with_decoder)
from mmaction_sttm.datasets.video_probe import (PROBLEM_KINDS, VideoProblem,
                                                file_problem, quiet_stderr)

Entry = Tuple[str, str]  # (path as listed, the whole line)


def read_entries(ann_file: str,
                 delimiter: Optional[str] = None) -> List[Entry]:
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
        description='Find the videos of an MMAction2 video list that no '
        'decoder can read, and report which decoders read each file.')
    parser.add_argument('ann_file', help='video list (path label per line)')
    parser.add_argument(
        'root',
        help="folder the paths are relative to (the config's "
        'data_prefix.video)')
    parser.add_argument(
        '--out',
        help='write the entries no decoder reads here '
        '(path<TAB>kind<TAB>detail)')
    parser.add_argument(
        '--clean-out', help='write the list without those entries here')
    parser.add_argument(
        '--report',
        help='write which decoders read each file here '
        '(path<TAB>one column per decoder: ok or the kind of problem)')
    parser.add_argument(
        '--decoders',
        nargs='+',
        choices=sorted(BUILTIN_DECODERS),
        help='decoders to try, in order (default: decord pyav opencv, '
        'those installed; the order of the zoo configs)')
    parser.add_argument(
        '--timeout',
        type=float,
        default=60,
        help='seconds each decoder gets per file (default 60; the timeout '
        "of the zoo configs' DecodeWithFallback)")
    parser.add_argument(
        '--workers',
        type=int,
        default=4,
        help='parallel threads (the decoders release the GIL while they '
        'read); default 4')
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
        help='exit with 1 when some entries no decoder reads')
    parser.add_argument(
        '--no-progress', action='store_true', help='no progress bar')
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error('--workers must be >= 1')
    if args.min_frames < 1:
        parser.error('--min-frames must be >= 1')
    if args.timeout <= 0:
        parser.error('--timeout must be > 0')
    return args


def build_decoders(names: Optional[Sequence[str]] = None) -> List[Decoder]:
    """MMAction2's transforms of the named decoders (None: the installed
    ones of ``decord, pyav, opencv``), built as ``DecodeWithFallback``
    builds them.

    Args:
        names (Sequence[str], optional): Decoder names, in order.

    Returns:
        list[Decoder]: The decoders.

    Raises:
        SystemExit: If a named decoder's package is missing.
    """
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    try:
        return DecoderChain(names).decoders
    except ValueError as err:
        sys.exit(f'--{err}')


Result = Tuple[Optional[VideoProblem], Dict[str, Optional[VideoProblem]]]


def check_file(filename: str,
               decoders: Sequence[Decoder],
               min_frames: int = 2,
               frame_size: Optional[Sequence[int]] = None,
               num_decode: int = 3,
               timeout: Optional[float] = 60) -> Result:
    """Probe one file with every decoder.

    Returns:
        tuple: The problem if no decoder reads the file (else None), and
        each decoder's problem (None: it reads the file).
    """
    problem = file_problem(filename)
    if problem is not None:
        return problem, {d.name: problem for d in decoders}
    each = {
        d.name:
        probe_with_decoder(d, filename, min_frames, frame_size, num_decode,
                           timeout)
        for d in decoders
    }
    problems = [p for p in each.values() if p is not None]
    if len(problems) < len(each):
        return None, each
    if len(problems) == 1:
        return problems[0], each
    return VideoProblem(
        problems[0].kind,
        'no decoder reads it: ' + '; '.join(p.detail for p in problems)), each


def check_entries(entries: Sequence[Entry],
                  root: str,
                  decoders: Sequence[Decoder],
                  workers: int = 4,
                  min_frames: int = 2,
                  frame_size: Optional[Sequence[int]] = None,
                  num_decode: int = 3,
                  timeout: Optional[float] = 60,
                  progress: bool = True) -> List[Result]:
    """:func:`check_file` on every entry, in threads.

    Returns:
        list[tuple]: One result per entry, in order.
    """

    def check(entry: Entry) -> Result:
        return check_file(
            video_path(root, entry[0]), decoders, min_frames, frame_size,
            num_decode, timeout)

    # FFmpeg writes a line per broken file to fd 2, and PyAV logs it once
    # more: both would bury the progress bar. Silence fd 2 and PyAV's logger
    # and give the bar a copy of the original fd 2.
    logging.getLogger('libav').setLevel(logging.CRITICAL)
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
    tooling.require_file(args.ann_file, 'video list')
    tooling.require_dir(args.root, 'video root')
    entries = read_entries(args.ann_file, args.delimiter)
    decoders = build_decoders(args.decoders)
    results = check_entries(entries, args.root, decoders, args.workers,
                            args.min_frames, args.frame_size, args.num_decode,
                            args.timeout, not args.no_progress)
    bad = [(entry, problem) for entry, (problem, _) in zip(entries, results)
           if problem is not None]
    for path in (args.out, args.clean_out, args.report):
        if path:
            os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if args.out:
        with open(args.out, 'w') as f:
            f.writelines(f'{path}\t{problem.kind}\t{problem.detail}\n'
                         for (path, _), problem in bad)
    if args.clean_out:
        with open(args.clean_out, 'w') as f:
            f.writelines(f'{line}\n'
                         for (_, line), (problem, _) in zip(entries, results)
                         if problem is None)
    names = [d.name for d in decoders]
    if args.report:
        with open(args.report, 'w') as f:
            f.write('\t'.join(['path', *names]) + '\n')
            for (path, _), (_, each) in zip(entries, results):
                cells = [
                    'ok' if each[n] is None else each[n].kind for n in names
                ]
                f.write('\t'.join([path, *cells]) + '\n')

    for (path, _), problem in bad[:20]:
        print(f'BAD {path}: {problem}')
    if len(bad) > 20:
        print(f'... and {len(bad) - 20} more' +
              (f' (all in {args.out})' if args.out else ''))
    readable = {n: sum(each[n] is None for _, each in results) for n in names}
    fallback_only = sum(1 for problem, each in results
                        if problem is None and each[names[0]] is not None)
    print('read by ' + ', '.join(f'{n} {readable[n]}' for n in names) +
          f'; {fallback_only} only by a decoder after {names[0]}')
    kinds = collections.Counter(problem.kind for _, problem in bad)
    by_kind = ', '.join(f'{kinds[k]} {k}' for k in PROBLEM_KINDS if kinds[k])
    print(f'checked {len(entries)} videos of {args.ann_file}: '
          f'{len(entries) - len(bad)} ok, {len(bad)} bad' +
          (f' ({by_kind})' if bad else ''))
    if args.out:
        print(f'entries no decoder reads written to {args.out}')
    if args.clean_out:
        print(f'{len(entries) - len(bad)} good entries written to '
              f'{args.clean_out}')
    if args.report:
        print(f'decoders per file written to {args.report}')
    return 1 if (args.strict and bad) else 0


if __name__ == '__main__':
    tooling.run(main)
