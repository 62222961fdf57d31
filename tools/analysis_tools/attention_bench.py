"""Time the packed attention kernels on one device: the measurement behind
``PACKED_KERNELS`` in ``mmaction_sttm/functional/attention.py``.

One attention call (forward) on a packed batch of videos with the given
token counts, at ViT-S's heads and head width by default, with every kernel
this torch has (``bucketed``, ``padded``, ``nested``, ``flex``; ``dense``
when the whole ``n x n`` mask fits, see ``--dense-limit``; or only those of
``--kernels``), beside one SDPA
call per video (the reference each kernel is checked against, and the cost
a variable-length kernel would reach). FlexAttention's block mask is timed
apart (built once per stage, shared by the blocks).

Example::

    python tools/analysis_tools/attention_bench.py --device cpu \\
        --lengths 1568 850 1568 900 1568 1000 1568 950 --threads 2
"""
import argparse
import statistics
import time
from typing import Callable, Dict, List, Optional

import torch
import torch.nn.functional as F


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--lengths',
        type=int,
        nargs='+',
        default=[1568, 850, 1568, 900, 1568, 1000, 1568, 950],
        help='tokens of each video (default: a batch of 8 mixing '
        'static and moving ViT-S/16 8x224 clips after RLT)')
    parser.add_argument('--heads', type=int, default=6)
    parser.add_argument('--head-dim', type=int, default=64)
    parser.add_argument(
        '--dtype', choices=('float32', 'bfloat16'), default='float32')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument(
        '--kernels',
        nargs='+',
        default=None,
        help='the kernels to time (default: every one); the others are '
        'listed as not run')
    parser.add_argument(
        '--dense-limit',
        type=int,
        default=20000,
        help='largest packed length timed with the dense mask')
    args = parser.parse_args(argv)
    if args.kernels is not None:
        from mmaction_sttm.functional.attention import KERNELS
        unknown = sorted(set(args.kernels) - set(KERNELS))
        if unknown:
            parser.error(f'--kernels: unknown {", ".join(unknown)} '
                         f'(known: {", ".join(KERNELS)})')
    return args


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _time(fn: Callable[[], torch.Tensor], device: torch.device,
          repeats: int) -> float:
    """Median milliseconds of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        begin = time.perf_counter()
        fn()
        _sync(device)
        times.append(1000 * (time.perf_counter() - begin))
    return statistics.median(times)


def bench(args: argparse.Namespace) -> List[Dict]:
    """Time every kernel; returns one row per kernel (``kernel``, ``ms``,
    ``max_abs_diff`` against the per-video calls, or ``skipped``)."""
    from mmaction_sttm.functional.attention import (KERNELS, PackedBias,
                                                    Packing, attention,
                                                    available, padding_bias)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    lengths = args.lengths
    total = sum(lengths)
    gen = torch.Generator().manual_seed(0)
    q, k, v = (
        torch.randn(1, args.heads, total, args.head_dim,
                    generator=gen).to(device, dtype) for _ in range(3))
    counts = torch.tensor(lengths, device=device)
    rows = torch.arange(max(lengths), device=device)[None] < counts[:, None]
    bias = padding_bias(rows, False, dtype)

    def per_video() -> torch.Tensor:
        return torch.cat([
            F.scaled_dot_product_attention(a, b, c) for a, b, c in zip(
                q.split(lengths, -2), k.split(lengths, -2), v.split(
                    lengths, -2))
        ], -2)

    with torch.no_grad():
        reference = per_video()
        results = [
            dict(
                kernel='one call per video (reference)',
                ms=_time(per_video, device, args.repeats),
                max_abs_diff=0.0)
        ]
        for kernel in KERNELS:
            row = dict(kernel=kernel)
            if args.kernels is not None and kernel not in args.kernels:
                row['skipped'] = 'not run (--kernels)'
            elif not available(kernel):
                row['skipped'] = f'not in torch {torch.__version__}'
            elif kernel == 'dense' and total > args.dense_limit:
                row['skipped'] = f'{total} x {total} mask'
            else:
                try:
                    packing = Packing(rows, bias, False, kernel)
                    if kernel == 'flex':
                        row['mask_ms'] = _time(
                            lambda: Packing(rows, bias, False, kernel).
                            block_mask(device), device, args.repeats)

                    def run(p=packing) -> torch.Tensor:
                        return attention(q, k, v, PackedBias(p))

                    out = run()
                    row['max_abs_diff'] = float(
                        (out.float() - reference.float()).abs().max())
                    row['ms'] = _time(run, device, args.repeats)
                except Exception as error:  # noqa: BLE001 (reported)
                    row['skipped'] = f'{type(error).__name__}: {error}'
            results.append(row)
    return results


def table(rows: List[Dict], args: argparse.Namespace) -> str:
    """The rows as a markdown table."""
    lines = [
        f'Packed attention, {args.device}, torch {torch.__version__}, '
        f'{args.dtype}, {args.heads} heads x {args.head_dim}, '
        f'{len(args.lengths)} videos of {min(args.lengths)}-'
        f'{max(args.lengths)} tokens (forward, median of {args.repeats}):', '',
        '| kernel | ms | max abs diff | note |', '| --- | ---: | ---: | --- |'
    ]
    for row in rows:
        if 'skipped' in row:
            lines.append(f'| {row["kernel"]} | | | {row["skipped"]} |')
            continue
        note = f'block mask {row["mask_ms"]:.1f} ms' if 'mask_ms' in row \
            else ''
        lines.append(f'| {row["kernel"]} | {row["ms"]:.1f} | '
                     f'{row["max_abs_diff"]:.1e} | {note} |')
    return '\n'.join(lines) + '\n'


def main(argv: Optional[List[str]] = None) -> str:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    text = table(bench(args), args)
    print(text)
    return text


if __name__ == '__main__':
    main()
