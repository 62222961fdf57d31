"""One-command GPU check of the merging backbones, written as a markdown
report.

1. Correctness: every model family of the catalog
   (``mmaction_sttm/models/catalog.py``: spacetime ViT, VideoMAE ViT,
   TimeSformer, the timm and mmpretrain image ViTs), small and with STTM,
   run on the device and on CPU with the same weights and input; the logits
   must agree
   (fp32).
2. The Triton greedy-selection kernel, compiled for the device, picks what
   the torch loop picks (skipped without Triton or without CUDA).
   The families that take RLT run it too, padded and packed, followed by
   STTM, on clips with static regions (so that videos keep different token
   counts).
3. Speed: ``benchmark.py`` on ViT-B and TimeSformer-B with and without STTM,
   eager and compiled, in bf16, with the merge share and peak memory; and
   ViT-S without and with RLT, and with RLT + STTM (padded, packed), eager
   and compiled, at batch 1, 8 and 32 on a batch that mixes static- and
   drifting-camera synthetic videos (made if missing, under ``data/rlt/``);
   and the packed attention kernels (``attention_bench.py``), which decide
   ``PACKED_KERNELS['cuda']`` in ``mmaction_sttm/functional/attention.py``.

4. Sharded training: ``tools/dist_train.sh`` on one device with the zoo's
   FSDP strategy (a unit per block, bf16 blocks, checkpointed blocks,
   sharded state dicts; ``configs/_base_/strategies/
   fsdp_bf16-cp_sharded-state.py``) trains a small ViT with STTM for one
   epoch on a small synthetic dataset (made under the report's folder) and
   writes a sharded checkpoint.

``--device cpu`` runs all of it on CPU against CPU, on tiny shapes when asked
(``--dry-run``: tiny speed configs, one repeat, no FlexAttention on CPU); the
tests use it so that the preparation of the report runs in CI without a GPU.

Example::

    python tools/analysis_tools/gpu_check.py --out work_dirs/gpu_check
"""
import argparse
import datetime
import os
import os.path as osp
import platform
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

import torch

from mmaction_sttm.models import catalog

ROOT = osp.join(osp.dirname(osp.abspath(__file__)), '..', '..')

#: Speed pairs: (baseline config, STTM config), relative to the repository.
SPEED_PAIRS = [
    ('configs/sttm/vit-base-p16_in1k-pre_8xb8-8x8x1-30e_kinetics400-rgb.py',
     'configs/sttm/sttm_vit-base-p16_in1k-pre_8xb8-8x8x1-30e_'
     'kinetics400-rgb.py'),
    ('configs/sttm/timesformer-base-p16_in1k-pre_8xb8-8x8x1-30e_'
     'kinetics400-rgb.py',
     'configs/sttm/sttm_timesformer-base-p16_in1k-pre_8xb8-8x8x1-30e_'
     'kinetics400-rgb.py'),
]
#: Tiny stand-ins for ``--dry-run``.
DRY_PAIRS = [
    ('configs/synthetic/spacetime-vit-tiny-p8_scratch_2xb8-8x2x1-20e_'
     'synthetic-motion-rgb.py',
     'configs/synthetic/sttm_spacetime-vit-tiny-p8_scratch_2xb8-8x2x1-20e_'
     'synthetic-motion-rgb.py'),
]
#: RLT speed: the ViT-S baseline, RLT and RLT + STTM, padded and packed.
RLT_CONFIGS = [
    'configs/sttm/vit-small-p16_in1k-pre_8xb8-8x8x1-30e_kinetics400-rgb.py'
] + [
    f'configs/rlt/{name}_vit-small-p16_in1k-pre_8xb8-8x8x1-30e_'
    'kinetics400-rgb.py'
    for name in ('rlt', 'rlt-packed', 'rlt-sttm', 'rlt-sttm-packed')
]
#: The RLT speed runs' videos: static- and drifting-camera videos
#: alternating (``docs/benchmark.md``, "a batch that mixes").
RLT_DATA = 'data/rlt'
RLT_LIST = 'data/rlt/mixed224_list_videos.txt'
DIMS, FRAMES, SIZE = 64, 4, 32
#: The sharded-training row: the zoo's FSDP strategy on a small ViT + STTM.
FSDP_STRATEGY = 'configs/_base_/strategies/fsdp_bf16-cp_sharded-state.py'
FSDP_MODEL = ('configs/synthetic/sttm_vit-tiny_scratch_2xb8-8x2x1-3e_'
              'synthetic-motion-rgb.py')
#: Small versions of every family (STTM after blocks 1 and 2 of 3), by title.
FAMILIES: Dict[str, dict] = {
    family.title: family.tiny(DIMS, FRAMES, SIZE)
    for family in catalog.FAMILIES
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--device',
        default='cuda',
        help='device to check against CPU (default: cuda)')
    parser.add_argument(
        '--out',
        default='work_dirs/gpu_check',
        help='folder of report.md and the speed tables')
    parser.add_argument(
        '--docs',
        action='store_true',
        help='write the report to docs/results/gpu/ instead')
    parser.add_argument(
        '--dry-run',
        action='store_true',
        help='tiny speed configs, one repeat (for CI)')
    parser.add_argument(
        '--skip-speed',
        action='store_true',
        help='correctness and the kernel only')
    parser.add_argument(
        '--skip-fsdp',
        action='store_true',
        help='skip the sharded-training run')
    parser.add_argument(
        '--batch',
        type=int,
        default=8,
        help='speed table batch size (default: 8)')
    parser.add_argument('--atol', type=float, default=1e-4)
    parser.add_argument('--rtol', type=float, default=1e-3)
    return parser.parse_args(argv)


def check_families(device: torch.device, atol: float,
                   rtol: float) -> List[Dict]:
    """Logits of every family on ``device`` against CPU, same weights and
    input, fp32.

    Returns:
        list[dict]: One row per family: ``family``, ``max_abs_diff``,
        ``ok``, and ``error`` when it failed to run.
    """
    import mmaction_sttm
    from mmaction_sttm.registry import MODELS
    mmaction_sttm.register_all_modules()
    rows = []
    sttm = dict(type='STTM', layers=(1, 2), fuse_init='orthogonal')
    cases = [(title, dict(cfg, merger=sttm), False)
             for title, cfg in FAMILIES.items()]
    for title, cfg in FAMILIES.items():
        backbone = MODELS.get(cfg['type'])
        if getattr(backbone, 'supports_attn_bias', False) \
                and 'TimeSformer' not in title:
            for mode in ('padded', 'packed'):
                cases.append(
                    (f'{title} + RLT {mode}',
                     dict(
                         cfg,
                         reducer=dict(type='RLT', threshold=0.05),
                         batching=mode,
                         merger=dict(sttm,
                                     stages=('spatiotemporal', ) * 2)), True))
    for family, cfg, static in cases:
        row = dict(family=family)
        try:
            torch.manual_seed(0)
            model = MODELS.build(cfg).eval()
            model.init_weights()
            clips = torch.randn(
                2,
                3,
                FRAMES,
                SIZE,
                SIZE,
                generator=torch.Generator().manual_seed(0))
            if static:  # the first clip half static: unequal token counts
                clips[0, :, :, :SIZE // 2] = clips[0, :, :1, :SIZE // 2]
            with torch.no_grad():
                ref = model(clips)
                got = model.to(device)(clips.to(device)).cpu()
            diff = (got - ref).abs().max().item()
            row.update(
                max_abs_diff=diff,
                ok=bool(torch.allclose(got, ref, atol=atol, rtol=rtol)))
        except Exception as error:  # noqa: BLE001  (reported, not raised)
            row.update(
                max_abs_diff=float('nan'),
                ok=False,
                error=f'{type(error).__name__}: {error}')
        rows.append(row)
    return rows


def check_triton(device: torch.device) -> Dict:
    """The Triton kernel against the torch loop at ViT-B's sizes.

    Returns:
        dict: ``status`` ('ok', 'mismatch', 'skipped' or 'error') and
        ``detail``.
    """
    from mmaction_sttm.functional import greedy_triton, sttm
    if greedy_triton.triton is None:
        return dict(status='skipped', detail='Triton is not importable')
    if device.type != 'cuda':
        return dict(
            status='skipped',
            detail=f'Triton kernels need CUDA, not {device.type}')
    cases = [(3, 50, 16, 30), (16, 196, 768, 147), (2, 784, 768, 588)]
    details = []
    try:
        for batch, length, dims, num in cases:
            gen = torch.Generator().manual_seed(length)
            x = sttm.normalize(
                torch.randn(batch, length, dims, generator=gen)).to(device)
            x[:, 5:10] = x[:, :1]  # exact duplicates: argmin ties
            sim = sttm.fp32_bmm(x, x.transpose(1, 2)).abs_()
            sim.diagonal(dim1=1, dim2=2).fill_(float('inf'))
            start = torch.randint(
                0, length, (batch, ), generator=gen).to(device)
            ref = sttm.greedy_select_torch(sim, start, num)
            torch.cuda.synchronize(device)
            begin = time.perf_counter()
            got = greedy_triton.greedy_select(sim, start, num)
            torch.cuda.synchronize(device)
            ms = 1000 * (time.perf_counter() - begin)
            if not torch.equal(got, ref):
                return dict(
                    status='mismatch',
                    detail=f'{batch}x{length} picks {num}: differ')
            details.append(f'{batch}x{length}->{num}: {ms:.2f} ms')
    except Exception as error:  # noqa: BLE001
        return dict(status='error', detail=f'{type(error).__name__}: {error}')
    return dict(status='ok', detail='; '.join(details))


def speed_commands(args: argparse.Namespace,
                   out: str) -> List[Tuple[str, List[str]]]:
    """The benchmark.py runs of the speed table: (name, argv) pairs."""
    pairs = DRY_PAIRS if args.dry_run else SPEED_PAIRS
    runs = []
    for base, merged in pairs:
        name = osp.basename(base).split('_')[0]
        for compiled in (False, True):
            tag = f'{name}_{"compiled" if compiled else "eager"}'
            argv = [
                osp.join(ROOT, base),
                osp.join(ROOT, merged), '--device', args.device, '--amp',
                'bf16', '--batch-sizes',
                str(args.batch), '--modes', 'inference', 'train',
                '--breakdown', '--out',
                osp.join(out, tag), '--cfg-options',
                'model.backbone.pretrained=None'
            ]
            if args.dry_run:
                argv += [
                    '--shape', '3', '8', '32', '32', '--warmup', '0',
                    '--repeats', '1'
                ]
            else:
                argv += ['--warmup', '3', '--repeats', '10']
            if compiled:
                argv.append('--compile')
            runs.append((tag, argv))
    if not args.dry_run:
        for compiled in (False, True):
            tag = f'rlt_{"compiled" if compiled else "eager"}'
            argv = [osp.join(ROOT, c) for c in RLT_CONFIGS] + [
                '--device', args.device, '--amp', 'bf16', '--batch-sizes', '1',
                '8', '32', '--modes', 'inference', '--videos',
                osp.join(ROOT, RLT_LIST), '--video-prefix',
                osp.join(ROOT, RLT_DATA), '--out',
                osp.join(out, tag), '--warmup', '4' if compiled else '3',
                '--repeats', '10', '--cfg-options',
                'model.backbone.pretrained=None'
            ] + (['--compile'] if compiled else [])
            runs.append((tag, argv))
    return runs


def make_rlt_videos() -> None:
    """The RLT speed runs' videos, if missing: 20 static- and 20
    drifting-camera videos of 64 frames at 224 pixels (a few minutes), and
    the list that alternates them."""
    if osp.exists(osp.join(ROOT, RLT_LIST)):
        return
    for camera, folder in (('static', 'static224'), ('drift', 'drift224')):
        subprocess.run([
            sys.executable,
            osp.join(ROOT, 'tools', 'data', 'make_synthetic_videos.py'),
            osp.join(ROOT, RLT_DATA, folder), '--camera', camera,
            '--resolution', '224', '--num-frames', '64', '--train-per-class',
            '1', '--val-per-class', '2'
        ],
                       check=True,
                       capture_output=True)
    lists = [
        open(osp.join(ROOT, RLT_DATA, folder,
                      'val_list_videos.txt')).read().split('\n')
        for folder in ('static224', 'drift224')
    ]
    with open(osp.join(ROOT, RLT_LIST), 'w') as f:
        for static, drift in zip(*lists):
            if static and drift:
                f.write(
                    f'static224/videos/{static}\ndrift224/videos/{drift}\n')


def run_attention(args: argparse.Namespace) -> str:
    """The packed attention kernels on the device (bf16; ``--dry-run``:
    tiny lengths and, on CPU, every kernel but FlexAttention, whose CPU
    compile takes longer than the rest of the dry run; it is checked on CPU
    in ``tests/functional/test_attention.py``), as a markdown table, or the
    error."""
    tool = osp.join(ROOT, 'tools', 'analysis_tools', 'attention_bench.py')
    argv = ['--device', args.device]
    if args.device != 'cpu':
        argv += ['--dtype', 'bfloat16']
    if args.dry_run:
        argv += ['--lengths', '30', '17', '9', '--repeats', '1']
        if args.device == 'cpu':
            argv += ['--kernels', 'bucketed', 'padded', 'nested', 'dense']
    proc = subprocess.run(
        [sys.executable, tool] + argv, capture_output=True, text=True)
    if proc.returncode != 0:
        return f'Failed (exit {proc.returncode}):\n\n```\n' \
            f'{proc.stderr[-2000:]}\n```\n'
    return proc.stdout


def run_fsdp(args: argparse.Namespace, out: str) -> Dict:
    """One epoch of ``tools/dist_train.sh`` with the zoo's FSDP strategy on
    one process of the device; returns the exit status, the time, the
    logged losses and whether the sharded checkpoint was written."""
    from mmaction_sttm.generators import SyntheticSpec, make_synthetic_dataset
    data = osp.join(out, 'fsdp_data')
    if not osp.exists(osp.join(data, 'val_list_videos.txt')):
        make_synthetic_dataset(
            data,
            SyntheticSpec(
                num_classes=2,
                train_per_class=4,
                val_per_class=2,
                resolution=32,
                num_frames=16,
                seed=0))
    config = osp.join(out, 'fsdp_bf16_cp.py')
    with open(config, 'w') as f:
        f.write(f"_base_ = [{osp.join(ROOT, FSDP_STRATEGY)!r}, "
                f"{osp.join(ROOT, FSDP_MODEL)!r}]\n")
    options = [
        'model.backbone.embed_dims=64', 'model.backbone.num_heads=2',
        'model.cls_head.in_channels=64', 'model.cls_head.num_classes=2',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'default_hooks.logger.interval=1', 'train_dataloader.batch_size=2',
        'val_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False'
    ]
    for loader, split in (('train', 'train'), ('val', 'val'), ('test', 'val')):
        options += [
            f'{loader}_dataloader.dataset.ann_file='
            f'{data}/{split}_list_videos.txt',
            f'{loader}_dataloader.dataset.data_prefix.video={data}/videos'
        ]
    work = osp.join(out, 'fsdp_work')
    env = dict(os.environ, PYTHON=sys.executable)
    if args.device == 'cpu':
        env['CUDA_VISIBLE_DEVICES'] = ''
    begin = time.perf_counter()
    proc = subprocess.run([
        'bash',
        osp.join(ROOT, 'tools', 'dist_train.sh'), config, '1', '--work-dir',
        work, '--seed', '0', '--cfg-options', *options
    ],
                          cwd=ROOT,
                          env=env,
                          capture_output=True,
                          text=True)
    losses = [
        line.split('loss: ')[1].split()[0]
        for line in proc.stdout.splitlines()
        if 'Epoch(train)' in line and 'loss: ' in line
    ]
    return dict(
        returncode=proc.returncode,
        seconds=time.perf_counter() - begin,
        losses=losses,
        sharded=osp.exists(osp.join(work, 'epoch_1.pth', 'rank0.pth')),
        stderr=(proc.stdout + proc.stderr)[-2000:])


def run_speed(args: argparse.Namespace, out: str) -> List[Dict]:
    """Run the speed table, each run in its own process (a compile cache or
    a crash of one does not touch the next)."""
    results = []
    tool = osp.join(ROOT, 'tools', 'analysis_tools', 'benchmark.py')
    if not args.dry_run:
        make_rlt_videos()
    for tag, argv in speed_commands(args, out):
        begin = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, tool] + argv, capture_output=True, text=True)
        table = osp.join(out, tag, 'benchmark.md')
        results.append(
            dict(
                tag=tag,
                returncode=proc.returncode,
                seconds=time.perf_counter() - begin,
                table=open(table).read() if osp.exists(table) else '',
                stderr=proc.stderr[-2000:]))
    return results


def write_report(path: str,
                 args: argparse.Namespace,
                 families: List[Dict],
                 triton: Dict,
                 speed: List[Dict],
                 attention: str = '',
                 fsdp: Optional[Dict] = None) -> str:
    """Write the markdown report to ``path`` and return its text."""
    device = args.device
    if device.startswith('cuda') and torch.cuda.is_available():
        device += f' ({torch.cuda.get_device_name(0)})'
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'],
                            cwd=ROOT,
                            capture_output=True,
                            text=True)
    lines = [
        '# GPU check', '',
        f'Device: {device}; torch {torch.__version__}; host '
        f'{platform.machine()}; commit '
        f'`{commit.stdout.strip() or "unknown"}`; '
        f'{datetime.datetime.now().isoformat(timespec="minutes")}.' +
        (' Dry run (tiny speed configs).' if args.dry_run else ''), '',
        '## Correctness: each family on the device against CPU', '',
        f'Small models with STTM after blocks 1 and 2, fp32, logits of 2 '
        f'clips of {FRAMES}x{SIZE}x{SIZE}; tolerance atol {args.atol}, '
        f'rtol {args.rtol}. RLT rows: RLT (padded or packed batches), then '
        f'STTM spatio-temporal after blocks 1 and 2; the first clip is half '
        f'static, so the two clips keep different token counts.', '',
        '| family | max abs diff | ok |', '| --- | ---: | --- |'
    ]
    for row in families:
        ok = 'yes' if row['ok'] else 'NO' + (
            f' ({row["error"]})' if 'error' in row else '')
        lines.append(f'| {row["family"]} | {row["max_abs_diff"]:.2e} '
                     f'| {ok} |')
    lines += [
        '', '## Triton greedy-selection kernel', '',
        f'{triton["status"]}: {triton["detail"]}', '',
        '## Packed attention kernels', '',
        'Which kernel `PACKED_KERNELS` should name for this device '
        '(mmaction_sttm/functional/attention.py): the fastest whose '
        'difference from one call per video is at float rounding.', '',
        attention or 'Not run.', '',
        '## Sharded training: FSDP + bf16 + activation checkpointing', ''
    ]
    if fsdp is None:
        lines.append('Not run (`--skip-fsdp`).')
    elif fsdp['returncode'] == 0 and fsdp['sharded']:
        lines.append(
            f'`tools/dist_train.sh` on 1 process, `{FSDP_STRATEGY}` on '
            f'`{FSDP_MODEL}` (width 64): one epoch in '
            f'{fsdp["seconds"]:.0f} s, losses {", ".join(fsdp["losses"])}; '
            'sharded checkpoint written.')
    else:
        lines += [
            f'Failed (exit {fsdp["returncode"]}, sharded checkpoint '
            f'{"written" if fsdp["sharded"] else "missing"}):', '', '```',
            fsdp['stderr'], '```'
        ]
    lines += ['', '## Speed (bf16)', '']
    if not speed:
        lines.append('Not run (`--skip-speed`).')
    for run in speed:
        lines += [f'### {run["tag"]} ({run["seconds"]:.0f} s)', '']
        if run['returncode'] == 0:
            lines.append(run['table'])
        else:
            lines += [
                f'Failed (exit {run["returncode"]}):', '', '```',
                run['stderr'], '```', ''
            ]
    text = '\n'.join(lines) + '\n'
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)
    return text


def main(argv: Optional[List[str]] = None) -> int:
    """Run the check; returns 0 when every check passed."""
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        print(
            'gpu_check: no CUDA device here; use --device cpu for a dry '
            'run',
            file=sys.stderr)
        return 2
    out = osp.join(ROOT, 'docs', 'results', 'gpu') if args.docs else args.out
    os.makedirs(out, exist_ok=True)
    families = check_families(device, args.atol, args.rtol)
    triton = check_triton(device)
    attention = run_attention(args)
    fsdp = None if args.skip_fsdp else run_fsdp(args, out)
    speed = [] if args.skip_speed else run_speed(args, out)
    path = osp.join(out, 'report.md')
    write_report(path, args, families, triton, speed, attention, fsdp)
    print(f'gpu_check: report written to {path}')
    failed = [r['family'] for r in families if not r['ok']]
    failed += ['triton'] if triton['status'] in ('mismatch', 'error') else []
    failed += [r['tag'] for r in speed if r['returncode'] != 0]
    failed += ['packed attention'] if attention.startswith('Failed') else []
    failed += ['fsdp'] if fsdp is not None and (
        fsdp['returncode'] != 0 or not fsdp['sharded']) else []
    if failed:
        print(f'gpu_check: FAILED: {", ".join(failed)}', file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
