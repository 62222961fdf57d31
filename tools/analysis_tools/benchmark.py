"""Speed, memory and GFLOPs of recognizer configs, measured side by side.

Every config is built once in this process; then the configs are timed in
turns (A B A B ...) so that drift of a noisy machine hits all of them alike.
For each config, batch size and mode (``inference``: forward under
``inference_mode``; ``train``: forward + backward of the classification
loss) it reports throughput (clips/s), latency per clip (median and
min-max over repeats), peak memory (what the step allocates, and with the
weights and the input), the share of the forward time spent in token
merging, GFLOPs per clip and, against the first config of the list (the
baseline), the wall-clock speed-up and that speed-up divided by the FLOP
ratio (1.0 means the FLOP savings all turned into time).

``--compile`` times every config under ``torch.compile`` (compiled during
the warm-up, outside the timed repeats); ``--amp bf16`` (or ``fp16``) runs
under autocast on CPU and CUDA alike; ``--breakdown`` adds the share of each
part of STTM (selection, correspondence, aggregation, fusion), from
profiled eager passes apart from the timed ones.

Example::

    python tools/analysis_tools/benchmark.py \\
        configs/sttm/vit-base-p16_in1k-pre_8xb8-8x8x1-30e_kinetics400-rgb.py \\
        configs/sttm/sttm_vit-base-p16_in1k-pre_8xb8-8x8x1-30e_kinetics400-rgb.py \\
        --batch-sizes 1 4 --modes inference train --out work_dirs/bench
"""
import argparse
import csv
import json
import math
import os
import os.path as osp
import platform
import statistics
import time
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.config import DictAction
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from tqdm import tqdm

from mmaction_sttm import tooling
from mmaction_sttm.analysis import peak_memory_mib, pipeline_view


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'configs', nargs='+', help='config files; the first is the baseline')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=4,
        default=None,
        metavar=('C', 'T', 'H', 'W'),
        help='one clip (default: the frames and crop of the '
        "configs' test pipeline)")
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1])
    parser.add_argument(
        '--modes',
        nargs='+',
        default=['inference'],
        choices=['inference', 'train'])
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument(
        '--amp',
        default='none',
        choices=['none', 'fp16', 'bf16'],
        help='autocast dtype (CPU or CUDA)')
    parser.add_argument(
        '--compile',
        action='store_true',
        help='time every config under torch.compile '
        '(inductor); compilation happens in the warm-up, '
        'which is then at least one step')
    parser.add_argument(
        '--breakdown',
        action='store_true',
        help="share of each part of STTM's merges "
        '(selection, correspondence, aggregation, fusion), '
        'from profiled eager forward passes')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='torch CPU threads (default: torch default)')
    parser.add_argument(
        '--out', default=None, help='folder for benchmark.md / .csv / .json')
    parser.add_argument(
        '--memory-only',
        action='store_true',
        help='only peak memory (one profiled step each): '
        'unlike timings it does not depend on the load of '
        'the machine')
    parser.add_argument(
        '--videos',
        metavar='ANN_FILE',
        default=None,
        help='time on the first view of real videos of this '
        'list (through the first config\'s test pipeline and '
        'data preprocessor) instead of random clips: what a '
        'content-adaptive reducer (RLT) keeps depends on the '
        'video; GFLOPs are then the mean over the videos')
    parser.add_argument(
        '--video-prefix',
        metavar='DIR',
        default=None,
        help='folder of the --videos files')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of every config')
    tooling.add_traceback_flag(parser)
    return parser.parse_args(argv)


class _Model:
    """One config's recognizer, with hooks that time its merges."""

    def __init__(self, path: str, cfg_options: Optional[dict],
                 device: torch.device) -> None:
        from mmaction_sttm.registry import MODELS
        cfg = tooling.load_config(path)
        if cfg_options:
            with tooling.config_errors():
                cfg.merge_from_dict(cfg_options)
        self.cfg = cfg
        # init_weights below reads pretrained files: a missing one is one
        # line naming the converter (or `--cfg-options
        # model.backbone.pretrained=None`).
        tooling.check_pretrained(cfg)
        self.name = osp.splitext(osp.basename(path))[0]
        view = pipeline_view(cfg)
        #: One clip (C, T, H, W) of the test pipeline, None where it does
        #: not say.
        self.clip = ((3, view['clip_len'], *view['crop'])
                     if view['clip_len'] and view['crop'] else None)
        with tooling.config_errors():
            self.model = MODELS.build(cfg.model)
        self.model.init_weights()
        self.model.to(device)
        self.device = device
        self.merge_time = 0.0
        self._start = 0.0
        self.timing_merges = False
        # The step's function: eager, or compiled by `compile()`. Merge
        # shares, breakdowns and memory of the eager model use `model`.
        self.forward = self.model._forward
        merge = getattr(self.model.backbone, 'merge_schedule', None)
        if merge is not None:
            merge.register_forward_pre_hook(self._pre)
            merge.register_forward_hook(self._post)

    def _sync(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    def _pre(self, *_) -> None:
        if self.timing_merges:
            self._sync()
            self._start = time.perf_counter()

    def _post(self, *_) -> None:
        if self.timing_merges:
            self._sync()
            self.merge_time += time.perf_counter() - self._start

    def compile(self) -> None:
        """Compile the step's forward with inductor (lazily: the first
        call of each mode compiles)."""
        self.forward = torch.compile(self.model._forward)

    def logits(self, clips: torch.Tensor, eager: bool = False) -> torch.Tensor:
        # Recognizer3D takes (N, views, C, T, H, W).
        forward = self.model._forward if eager else self.forward
        return forward(clips.unsqueeze(1), stage='head')

    def weights_mib(self) -> float:
        """Parameters and buffers (MiB)."""
        tensors = list(self.model.parameters()) + list(self.model.buffers())
        return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def _timer(device: torch.device) -> Callable[[Callable[[], None]], float]:
    """Return a function that times one call in seconds."""
    if device.type == 'cuda':

        def run(fn: Callable[[], None]) -> float:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            return start.elapsed_time(end) / 1000
    else:

        def run(fn: Callable[[], None]) -> float:
            start = time.perf_counter()
            fn()
            return time.perf_counter() - start

    return run


def _step(entry: _Model,
          clips: torch.Tensor,
          labels: torch.Tensor,
          mode: str,
          autocast: Optional[torch.dtype],
          eager: bool = False) -> Callable[[], None]:
    model = entry.model

    def inference() -> None:
        # Autocast takes the clips' device type: 'cpu' or 'cuda' alike.
        with torch.inference_mode(), torch.autocast(
                clips.device.type, dtype=autocast, enabled=autocast
                is not None):
            entry.logits(clips, eager)

    def train() -> None:
        with torch.autocast(
                clips.device.type, dtype=autocast, enabled=autocast
                is not None):
            loss = F.cross_entropy(entry.logits(clips, eager), labels)
        loss.backward()
        model.zero_grad(set_to_none=True)

    if mode == 'inference':
        model.eval()
        return inference
    model.train()
    return train


def _inputs(
        batch: int,
        shape: List[int],
        device: torch.device,
        views: Optional[torch.Tensor] = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """A fixed batch of clips and its labels: random, or the first
    ``batch`` of ``views`` (cycled)."""
    if views is not None:
        clips = views[torch.arange(batch) % len(views)].to(device)
    else:
        gen = torch.Generator().manual_seed(0)
        clips = torch.randn(batch, *shape, generator=gen).to(device)
    return clips, torch.zeros(batch, dtype=torch.long, device=device)


def _video_views(args: argparse.Namespace, entry: '_Model') -> torch.Tensor:
    """``--videos``: the first view of each video, normalised
    ``(N, C, T, H, W)``, as many as the largest batch."""
    from mmaction_sttm.analysis.view import video_views
    batches = video_views(entry.cfg, args.videos, args.video_prefix,
                          max(args.batch_sizes))
    with torch.no_grad():
        return torch.cat([
            entry.model.data_preprocessor(b, False)['inputs'][:, 0].cpu()
            for b in batches
        ])


def _mib_cell(value: float) -> str:
    """A MiB figure for the table (``n/a`` when not measured)."""
    return 'n/a' if math.isnan(value) else f'{value:.0f}'


#: The parts of an STTM merge, as its record_function ranges name them.
PARTS = ('selection', 'correspondence', 'aggregation', 'fusion')

#: Matrix products, whose FLOPs the profiler counts (two per multiply-add).
PRODUCTS = ('aten::mm', 'aten::addmm', 'aten::bmm', 'aten::baddbmm')


def _part_of(event) -> Optional[str]:
    """The STTM part whose ``sttm.<part>`` range encloses a profiler event,
    or None."""
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith('sttm.') and parent.name[5:] in PARTS:
            return parent.name[5:]
        parent = parent.cpu_parent
    return None


def _breakdown(fn: Callable[[], None],
               repeats: int) -> Tuple[Dict[str, float], Dict[str, float]]:
    """Time and multiply-adds of each STTM part, from ``repeats`` profiled
    calls of ``fn``.

    The time share is the inclusive CPU time of the merger's ``sttm.<part>``
    ranges over the profiled wall time. Profiling adds a small cost per
    operator to both, so these are for comparing parts; the merge share
    proper is the unprofiled one. The multiply-adds are those of the matrix
    products (:data:`PRODUCTS`) inside each range, per call: the same
    convention (one multiply-add, one FLOP) as the model's GFLOPs.

    Returns:
        tuple[dict, dict]: Time share and multiply-adds per call, by part.
    """
    start = time.perf_counter()
    with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU],
            with_flops=True) as prof:
        for _ in range(repeats):
            fn()
    wall_us = (time.perf_counter() - start) * 1e6
    times = {part: 0.0 for part in PARTS}
    macs = {part: 0.0 for part in PARTS}
    for event in prof.events():
        name = event.name
        if name.startswith('sttm.') and name[5:] in times:
            times[name[5:]] += event.cpu_time_total
        elif name in PRODUCTS and event.flops:
            part = _part_of(event)
            if part is not None:
                macs[part] += event.flops / 2 / repeats
    return ({part: value / wall_us for part, value in times.items()}, macs)


def clip_shape(shape: Optional[List[int]], entries: List[_Model]) -> List[int]:
    """The clip to time: ``--shape``, else the one clip that every config's
    test pipeline reads.

    Args:
        shape (list[int], optional): ``--shape`` (C T H W).
        entries (list[_Model]): The configs' models.

    Returns:
        list[int]: ``[C, T, H, W]``.
    """
    if shape is not None:
        return list(shape)
    clips = {e.name: e.clip for e in entries}
    missing = [name for name, clip in clips.items() if clip is None]
    if missing:
        raise tooling.ToolError(
            f'the test pipeline of {missing[0]} gives no clip length or crop '
            'size; pass the clip with --shape C T H W')
    if len(set(clips.values())) > 1:
        listed = ', '.join(f'{name}: {"x".join(map(str, clip))}'
                           for name, clip in clips.items())
        raise tooling.ToolError(
            f'the configs read different clips ({listed}); time them on one '
            'with --shape C T H W')
    return list(entries[0].clip)


def benchmark(args: argparse.Namespace) -> List[Dict]:
    """Run the benchmark described by ``args`` and return one row per
    (config, mode, batch size)."""
    init_default_scope('mmaction')
    MMLogger.get_instance('mmengine', log_level='WARNING')
    import mmaction_sttm  # noqa: F401
    from mmaction_sttm.analysis import complexity
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    autocast = dict(
        none=None, fp16=torch.float16, bf16=torch.bfloat16)[args.amp]
    entries = [_Model(p, args.cfg_options, device) for p in args.configs]
    views = None
    if args.videos:
        views = _video_views(args, entries[0])
        args.shape = list(views.shape[1:])
    args.shape = clip_shape(args.shape, entries)
    if args.compile:
        for e in entries:
            e.compile()
    if views is None:
        gflops = {
            e.name: complexity(e.model, (1, *args.shape))['flops'] / 1e9
            for e in entries
        }
    else:  # content-adaptive models: the mean over the videos
        gflops = {
            e.name:
            statistics.fmean(
                complexity(e.model, clips=v[None])['flops']
                for v in views) / 1e9
            for e in entries
        }
    timer = _timer(device)
    rows = []
    plan = [(mode, bs) for mode in args.modes for bs in args.batch_sizes]
    if args.memory_only:
        return _memory_rows(entries, plan, args, device, autocast, gflops,
                            views)
    # A compiled step compiles on its first call: at least one warm-up.
    warmup = max(args.warmup, 1) if args.compile else args.warmup
    bar = tqdm(
        total=len(plan) * len(entries) * (warmup + args.repeats),
        desc='benchmark',
        unit='run')
    for mode, batch in plan:
        clips, labels = _inputs(batch, args.shape, device, views)
        steps = {
            e.name: _step(e, clips, labels, mode, autocast)
            for e in entries
        }
        times: Dict[str, List[float]] = {e.name: [] for e in entries}
        for rep in range(warmup + args.repeats):
            for e in entries:  # interleaved: A B A B ...
                elapsed = timer(steps[e.name])
                if rep >= warmup:
                    times[e.name].append(elapsed)
                bar.update(1)
        for e in entries:
            # Share of the forward time in merges: separate eager forward
            # passes with synchronising hooks, so the timed passes stay
            # clean (and compiled graphs hold no timing hooks).
            e.merge_time, total = 0.0, 0.0
            e.timing_merges = True
            fwd = _step(e, clips, labels, 'inference', autocast, eager=True)
            fwd()  # warm-up of the eager path (it may not have run yet)
            e.merge_time = 0.0
            for _ in range(max(1, args.repeats // 2)):
                total += timer(fwd)
            e.timing_merges = False
            share = e.merge_time / total if total else 0.0
            # On CPU the profiler sees none of the buffers that inductor's
            # compiled code allocates: no figure rather than a wrong one.
            mem = (
                float('nan') if args.compile and device.type == 'cpu' else
                peak_memory_mib(steps[e.name], device))
            median = statistics.median(times[e.name])
            row = dict(
                config=e.name,
                mode=mode,
                batch=batch,
                clips_per_s=batch / median,
                latency_ms=1000 * median / batch,
                latency_min_ms=1000 * min(times[e.name]) / batch,
                latency_max_ms=1000 * max(times[e.name]) / batch,
                peak_mem_mib=mem,
                total_mem_mib=mem + e.weights_mib() + _mib(clips),
                merge_share=share,
                gflops=gflops[e.name])
            if args.breakdown:
                shares, macs = _breakdown(fwd, max(1, args.repeats // 2))
                row.update({f'share_{p}': v for p, v in shares.items()})
                model_macs = batch * gflops[e.name] * 1e9
                row.update({
                    f'flop_share_{p}': v / model_macs
                    for p, v in macs.items()
                })
            rows.append(row)
        base = rows[-len(entries)]
        for row in rows[-len(entries):]:
            row['speedup'] = base['latency_ms'] / row['latency_ms']
            row['flop_ratio'] = base['gflops'] / row['gflops']
            row['speedup_over_flop_ratio'] = row['speedup'] / row['flop_ratio']
    bar.close()
    return rows


def _mib(tensor: torch.Tensor) -> float:
    return tensor.numel() * tensor.element_size() / 2**20


def _memory_rows(entries: List,
                 plan: List,
                 args: argparse.Namespace,
                 device: torch.device,
                 autocast: Optional[torch.dtype],
                 gflops: Dict[str, float],
                 views: Optional[torch.Tensor] = None) -> List[Dict]:
    rows = []
    for mode, batch in tqdm(plan, desc='memory', unit='setting'):
        clips, labels = _inputs(batch, args.shape, device, views)
        for e in entries:
            step = _step(e, clips, labels, mode, autocast)
            step()  # warm-up: lazily built buffers are not the step's
            mem = peak_memory_mib(step, device)
            rows.append(
                dict(
                    config=e.name,
                    mode=mode,
                    batch=batch,
                    peak_mem_mib=mem,
                    total_mem_mib=mem + e.weights_mib() + _mib(clips),
                    gflops=gflops[e.name]))
    return rows


def to_markdown(rows: List[Dict], args: argparse.Namespace) -> str:
    """Format rows as a markdown table with the run's settings."""
    device = args.device
    if device.startswith('cuda') and torch.cuda.is_available():
        device += f' ({torch.cuda.get_device_name(0)})'
    compiled = ', torch.compile' if args.compile else ''
    memory_note = (
        'Peak MiB: the most the step allocates on top of what exists '
        'before it (activations, gradients, temporaries); "+ weights, '
        'input" adds the parameters, buffers and the input batch.')
    if args.compile and args.device.startswith('cpu'):
        memory_note += (' Under torch.compile on CPU peak memory is not '
                        'measured (n/a): the profiler does not see the '
                        'buffers of the compiled code.')
    if args.memory_only:
        lines = [
            f'Device: {device}, torch {torch.__version__}, amp {args.amp}'
            f'{compiled}, clip {tuple(args.shape)}. Peak memory of one '
            f'step, after one warm-up step. {memory_note}', '',
            '| config | mode | batch | GFLOPs/clip | peak MiB | + weights, '
            'input MiB | vs. first |',
            '| --- | --- | ---: | ---: | ---: | ---: | ---: |'
        ]
        for r in rows:
            base = next(b for b in rows
                        if b['mode'] == r['mode'] and b['batch'] == r['batch'])
            lines.append(f'| {r["config"]} | {r["mode"]} | {r["batch"]} | '
                         f'{r["gflops"]:.1f} | {r["peak_mem_mib"]:.0f} | '
                         f'{r["total_mem_mib"]:.0f} | '
                         f'{r["peak_mem_mib"] / base["peak_mem_mib"]:.2f}x |')
        return '\n'.join(lines) + '\n'
    lines = [
        f'Device: {device}, torch {torch.__version__}, threads '
        f'{torch.get_num_threads()}, amp {args.amp}{compiled}, clip '
        f'{tuple(args.shape)}, {args.warmup} warm-up + {args.repeats} timed '
        f'repeats per config, configs interleaved. Speed-up is against '
        f'`{rows[0]["config"]}`. Merge share: eager forward passes with '
        f'timing hooks, apart from the timed ones. {memory_note}', '',
        '| config | mode | batch | GFLOPs/clip | clips/s | ms/clip (min-max) '
        '| peak MiB | + weights, input MiB | merge share | speed-up '
        '| FLOP ratio | speed-up / FLOP ratio |',
        '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: '
        '| ---: | ---: | ---: |'
    ]
    for r in rows:
        lines.append(
            f'| {r["config"]} | {r["mode"]} | {r["batch"]} | '
            f'{r["gflops"]:.1f} | {r["clips_per_s"]:.2f} | '
            f'{r["latency_ms"]:.1f} ({r["latency_min_ms"]:.1f}-'
            f'{r["latency_max_ms"]:.1f}) | {_mib_cell(r["peak_mem_mib"])} | '
            f'{_mib_cell(r["total_mem_mib"])} | '
            f'{100 * r["merge_share"]:.1f}% | {r["speedup"]:.2f}x | '
            f'{r["flop_ratio"]:.2f}x | {r["speedup_over_flop_ratio"]:.2f} |')
    if args.breakdown:
        lines += [
            '', "Merge breakdown: each part of STTM's merges as a share of "
            'the eager forward time (the inclusive CPU time of its '
            '`sttm.<part>` profiler ranges over the profiled forward time) '
            "and, in brackets, as a share of the model's FLOPs (the "
            "multiply-adds of the part's matrix products over the model's "
            'GFLOPs). Fusion is `phi` and the fusion layer. Profiled passes, '
            'apart from the timed ones.', '', '| config | mode | batch | ' +
            ' | '.join(PARTS) + ' | sum of parts | merge share |',
            '| --- | --- | ---: | ' + ' | '.join(['---:'] * len(PARTS)) +
            ' | ---: | ---: |'
        ]
        for r in rows:
            if not r['merge_share']:
                continue
            cells = [(r.get(f'share_{p}', 0.0), r.get(f'flop_share_{p}', 0.0))
                     for p in PARTS]
            cells.append(tuple(map(sum, zip(*cells))))
            lines.append(f'| {r["config"]} | {r["mode"]} | {r["batch"]} | ' +
                         ' | '.join(f'{100 * t:.2f}% ({100 * f:.2f}%)'
                                    for t, f in cells) +
                         f' | {100 * r["merge_share"]:.2f}% |')
    return '\n'.join(lines) + '\n'


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    for path in args.configs:
        tooling.require_file(path, 'config')
    rows = benchmark(args)
    table = to_markdown(rows, args)
    print(table)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(osp.join(args.out, 'benchmark.md'), 'w') as f:
            f.write(table)
        with open(osp.join(args.out, 'benchmark.csv'), 'w', newline='') as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        with open(osp.join(args.out, 'benchmark.json'), 'w') as f:
            json.dump(
                dict(rows=rows, args=vars(args), host=platform.machine()),
                f,
                indent=1)


if __name__ == '__main__':
    tooling.run(main)
