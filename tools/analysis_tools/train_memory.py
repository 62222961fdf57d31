"""Peak training memory per rank of a recognizer config: one training step
(forward, backward, optimizer step) on one process, or per rank under FSDP
(a unit per transformer block) on several CPU processes over gloo.

Each rank reports what it holds between steps (its parameters or their
shards, buffers, optimizer states and any gradients that persist: the
tensors themselves, counted) and the peak that one step adds on top
(activations, gradients, FSDP's gathered blocks), after a warm-up step that
creates the optimizer states. Their sum is the rank's peak.

The step's peak is the process's resident memory: its peak (``VmHWM``, reset
before the step through ``/proc/self/clear_refs``) minus what it held
before, with glibc's ``malloc`` returning every block of 64 KiB or more to
the system when it is freed (``MALLOC_MMAP_THRESHOLD_=65536``, set by the
tool, which restarts itself with it), so that resident memory follows the
live tensors. Linux only. On one process the profiler's replay of
allocations and frees (:func:`~mmaction_sttm.analysis.peak_memory_mib`,
``--profile``: ``profiler_step_mib``) gives the same figure within a few
percent; under
FSDP it misses frees (of the gathered blocks and unsharded gradients) and
counts several times more, so it is recorded but not used.

Example (ViT-L + STTM, 16 x 224 x 224, 2 clips, checkpointed blocks, FSDP
on 2 ranks)::

    python tools/analysis_tools/train_memory.py configs/videomae/\\
sttm_vit-large-p16_videomae-k400-pre_8xb2-16x4x1-35e_kinetics400-rgb.py \\
        --batch-size 2 --ranks 2 --cfg-options model.backbone.with_cp=True

``--clip static`` repeats the first frame (what RLT removes). ``--out``
appends each rank's figures as a JSON line; ``--table OUT.jsonl`` prints
the markdown table of such a file (docs/scale.md's, made by
``tools/analysis_tools/train_memory_table.sh``).
"""
import argparse
import json
import os
import socket
import sys
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.config import DictAction

from mmaction_sttm import tooling

MMAP_THRESHOLD = 'MALLOC_MMAP_THRESHOLD_'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Peak training memory per rank of a recognizer config')
    parser.add_argument('config', nargs='?', help='recognizer config')
    parser.add_argument(
        '--table',
        metavar='JSONL',
        help='print the markdown table of the rows in this file instead')
    parser.add_argument(
        '--batch-size', type=int, default=2, help='clips per rank')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=4,
        metavar=('C', 'T', 'H', 'W'),
        default=[3, 16, 224, 224],
        help='one clip')
    parser.add_argument(
        '--clip',
        choices=('random', 'static'),
        default='random',
        help='random noise, or its first frame repeated (a static clip)')
    parser.add_argument(
        '--ranks',
        type=int,
        default=1,
        help='1: one process, no wrapper; more: FSDP with a unit per '
        'block on that many CPU processes (gloo)')
    parser.add_argument('--out', help='append the result as a JSON line')
    parser.add_argument(
        '--profile',
        action='store_true',
        help='also replay the profiler\'s allocations of one more step '
        '(profiler_step_mib; slow)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config')
    tooling.add_traceback_flag(parser)
    return parser.parse_args(argv)


def _mib(tensors) -> float:
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def _status_mib(key: str) -> float:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f'/proc/self/status has no {key}')


def _resident_step_mib(fn) -> float:
    """The resident memory that ``fn`` adds at its peak (MiB)."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # resets VmHWM to the current resident size
    before = _status_mib('VmRSS')
    fn()
    return _status_mib('VmHWM') - before


def _token_blocks(backbone: torch.nn.Module, clips: torch.Tensor) -> Dict:
    """The sequence lengths the blocks run on: ``token_blocks``, the sum
    over blocks of the batch's tokens (padded, CLS included), and
    ``max_tokens``, the longest block's (what the activations scale
    with)."""
    with torch.no_grad():
        _, stages = backbone.forward_tokens(clips)
    schedule = backbone.merge_schedule
    layers = sorted(schedule.layers) if schedule is not None else []
    cls = int(backbone.geometry.has_cls)
    lengths, stage = [], 0
    for block in range(1, backbone.num_blocks + 1):
        x = stages[stage].x
        lengths.append(x.shape[0] * (x.shape[1] + cls))
        if stage < len(layers) and block == layers[stage]:
            stage += 1
    return dict(token_blocks=sum(lengths), max_tokens=max(lengths))


def _clips(args: argparse.Namespace) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    clips = torch.randn(args.batch_size, *args.shape, generator=gen)
    if args.clip == 'static':
        clips[:, :, 1:] = clips[:, :, :1]
    return clips


def _rank_memory(rank: int, args: argparse.Namespace, port: int,
                 out: Optional[str]) -> Dict:
    """Build, wrap and measure on one rank; returns (and with ``out``
    writes) its figures."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    import mmaction_sttm  # noqa: F401
    from mmaction_sttm.analysis import peak_memory_mib
    from mmaction_sttm.registry import MODELS
    torch.set_num_threads(max(1, torch.get_num_threads() // args.ranks))
    if args.ranks > 1:
        import torch.distributed as dist
        dist.init_process_group(
            'gloo',
            init_method=f'tcp://127.0.0.1:{port}',
            rank=rank,
            world_size=args.ranks)
    cfg = tooling.load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    tooling.disable_pretrained(cfg.model)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    backbone_cfg = cfg.model.backbone
    tokens = (backbone_cfg.get('reducer') or {}).get('type') or \
        (backbone_cfg.get('merger') or {}).get('type') or 'unmerged'
    shape = dict(
        width=int(model.backbone.embed_dims),
        depth=int(model.backbone.num_blocks),
        tokens=tokens)
    model.init_weights()
    model.train()
    clips = _clips(args)[:, None]  # (N, views, C, T, H, W)
    shape.update(_token_blocks(model.backbone, clips[:, 0]))
    if args.ranks > 1:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

        from mmaction_sttm.engine.fsdp import merging_block_wrap_policy
        model = FSDP(
            model,
            device_id=torch.device('cpu'),
            use_orig_params=True,
            auto_wrap_policy=merging_block_wrap_policy)
    optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    optimizer = optim_wrapper.optimizer
    labels = torch.zeros(args.batch_size, dtype=torch.long)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        logits = model(clips, stage='head') if args.ranks > 1 else \
            model._forward(clips, stage='head')
        F.cross_entropy(logits.float(), labels).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # creates the optimizer states
    if args.ranks > 1:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        params = [unit._flat_param for unit in FSDP.fsdp_modules(model)]
    else:
        params = list(model.parameters())
    states = [
        value for state in optimizer.state.values()
        for value in state.values() if torch.is_tensor(value)
    ]
    held = dict(
        params_mib=_mib(params),
        grads_mib=_mib([p.grad for p in params if p.grad is not None]),
        buffers_mib=_mib(list(model.buffers())),
        optimizer_mib=_mib(states))
    profiler_step_mib = peak_memory_mib(step, torch.device('cpu')) \
        if args.profile else None
    step_mib = _resident_step_mib(step)
    result = dict(
        config=os.path.basename(args.config),
        cfg_options=args.cfg_options or {},
        clip=args.clip,
        shape=args.shape,
        batch_size=args.batch_size,
        ranks=args.ranks,
        rank=rank,
        torch=torch.__version__,
        **shape,
        **held,
        step_mib=step_mib,
        profiler_step_mib=profiler_step_mib,
        peak_mib=sum(held.values()) + step_mib)
    if args.ranks > 1:
        import torch.distributed as dist
        dist.barrier()
        dist.destroy_process_group()
    if out is not None:
        with open(f'{out}.rank{rank}', 'w') as f:
            json.dump(result, f)
    return result


def measure(args: argparse.Namespace) -> List[Dict]:
    """The figures of every rank (one process per rank)."""
    if args.ranks == 1:
        return [_rank_memory(0, args, 0, None)]
    import tempfile

    import torch.multiprocessing as mp
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'memory')
        mp.spawn(
            _rank_memory, args=(args, port, out), nprocs=args.ranks, join=True)
        rows = []
        for rank in range(args.ranks):
            with open(f'{out}.rank{rank}') as f:
                rows.append(json.load(f))
    return rows


def _variant(row: Dict) -> Tuple[str, str, str]:
    """Model, reducer and checkpointing of a row, as the table names them."""
    options = row['cfg_options']
    sizes = {(768, 12): 'ViT-B', (1024, 24): 'ViT-L', (1280, 32): 'ViT-H'}
    if 'width' in row:
        model = sizes.get((row['width'], row['depth']),
                          f"ViT ({row['depth']} x {row['width']})")
        cp = 'yes' if options.get('model.backbone.with_cp') else 'no'
        clip = f" ({row['clip']} clip)" if row['clip'] != 'random' else ''
        return model, row['tokens'] + clip, cp
    width = options.get('model.backbone.embed_dims')
    model = 'ViT-B' if width == 768 else 'ViT-H' if 'huge' in row[
        'config'] else 'ViT-L'
    if 'model.backbone.reducer.type' in options:
        reducer = (f"{options['model.backbone.reducer.type']} "
                   f"({row['clip']} clip)")
    else:
        reducer = row['config'].split('_vit')[0].upper() \
            if row['config'].startswith(('sttm', 'tome')) else 'unmerged'
        reducer = {'TOME': 'ToMe'}.get(reducer, reducer)
    cp = 'yes' if options.get('model.backbone.with_cp') else 'no'
    return model, reducer, cp


def table(path: str) -> str:
    """The markdown table of the JSON lines in ``path``: one row per model,
    reducer and checkpointing; per rank, one process and FSDP's largest
    rank."""
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    cells: Dict[Tuple[str, str, str], Dict[int, Dict]] = {}
    for row in rows:
        by_ranks = cells.setdefault(_variant(row), {})
        best = by_ranks.get(row['ranks'])
        if best is None or row['peak_mib'] > best['peak_mib']:
            by_ranks[row['ranks']] = row
    lines = [
        '| model | tokens | with_cp | 1 process: held + step = peak (MiB) '
        '| FSDP, 2 ranks: held + step = peak (MiB per rank) |',
        '| --- | --- | --- | ---: | ---: |'
    ]

    def cell(row: Optional[Dict]) -> str:
        if row is None:
            return 'not measured'
        held = row['params_mib'] + row['grads_mib'] + row['buffers_mib'] \
            + row['optimizer_mib']
        return (f"{held:.0f} + {row['step_mib']:.0f} = "
                f"**{row['peak_mib']:.0f}**")

    for key in sorted(cells, key=lambda k: (k[0], k[2], k[1])):
        lines.append(f'| {key[0]} | {key[1]} | {key[2]} | '
                     f'{cell(cells[key].get(1))} | '
                     f'{cell(cells[key].get(2))} |')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if argv is None and os.environ.get(MMAP_THRESHOLD) != '65536':
        # Freed blocks of 64 KiB and more go back to the system, so that
        # resident memory follows the live tensors (read at start-up).
        os.execve(sys.executable, [sys.executable, *sys.argv], {
            **os.environ, MMAP_THRESHOLD: '65536'
        })
    if args.table:
        tooling.require_file(args.table, 'memory rows')
        print(table(args.table))
        return
    if args.config is None:
        raise tooling.ToolError('a config (or --table JSONL) is required')
    tooling.load_config(args.config)  # a missing config: one line
    if args.ranks < 1 or args.batch_size < 1:
        raise tooling.ToolError('--ranks and --batch-size must be >= 1')
    rows = measure(args)
    for row in rows:
        print(f"rank {row['rank']}/{row['ranks']}: peak "
              f"{row['peak_mib']:.0f} MiB = parameters "
              f"{row['params_mib']:.0f} + gradients {row['grads_mib']:.0f} "
              f"+ buffers {row['buffers_mib']:.0f} + optimizer "
              f"{row['optimizer_mib']:.0f} + step {row['step_mib']:.0f}" +
              (f" (profiler: {row['profiler_step_mib']:.0f})"
               if row['profiler_step_mib'] is not None else ''))
    if args.out:
        with open(args.out, 'a') as f:
            for row in rows:
                f.write(json.dumps(row) + '\n')


if __name__ == '__main__':
    tooling.run(main)
