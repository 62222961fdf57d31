"""Seconds-long runs of the benchmark tool, so that it keeps working (its
real runs are documented in docs/benchmark.md)."""
import csv
import importlib.util
import json
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VIT = 'configs/synthetic/spacetime-vit-tiny-p8_scratch_2xb8-8x2x1-20e_synthetic-motion-rgb.py'  # noqa: E501
STTM = 'configs/synthetic/sttm_spacetime-vit-tiny-p8_scratch_2xb8-8x2x1-20e_synthetic-motion-rgb.py'  # noqa: E501


def _tool(name: str):
    path = osp.join(ROOT, 'tools', 'analysis', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_smoke(tmp_path):
    bench = _tool('benchmark')
    out = str(tmp_path / 'bench')
    bench.main([
        osp.join(ROOT, VIT), osp.join(ROOT, STTM), '--shape', '3', '8', '56',
        '56', '--batch-sizes', '2', '--modes', 'inference', 'train',
        '--warmup', '0', '--repeats', '1', '--device', 'cpu', '--out', out
    ])
    with open(osp.join(out, 'benchmark.csv')) as f:
        rows = list(csv.DictReader(f))
    assert [(r['config'].startswith('sttm_'), r['mode']) for r in rows] == [
        (False, 'inference'), (True, 'inference'), (False, 'train'),
        (True, 'train')
    ]
    for row in rows:
        assert float(row['clips_per_s']) > 0
        assert float(row['peak_mem_mib']) > 0
    baseline, merged = rows[0], rows[1]
    assert float(baseline['merge_share']) == 0
    assert 0 < float(merged['merge_share']) < 1
    assert float(merged['flop_ratio']) > 1.2
    assert 'speed-up / FLOP ratio' in open(osp.join(out,
                                                    'benchmark.md')).read()



def test_benchmark_memory_only(tmp_path):
    """--memory-only: one profiled step per setting, no timings; merging
    saves training memory."""
    bench = _tool('benchmark')
    out = str(tmp_path / 'mem')
    bench.main([
        osp.join(ROOT, VIT), osp.join(ROOT, STTM), '--shape', '3', '8', '56',
        '56', '--batch-sizes', '2', '--modes', 'train', '--device', 'cpu',
        '--memory-only', '--out', out
    ])
    with open(osp.join(out, 'benchmark.csv')) as f:
        rows = list(csv.DictReader(f))
    assert [r['mode'] for r in rows] == ['train', 'train']
    assert 'clips_per_s' not in rows[0]
    base, merged = (float(r['peak_mem_mib']) for r in rows)
    assert 0 < merged < base
    assert '| peak MiB | vs. first |' in open(osp.join(out,
                                                      'benchmark.md')).read()


def test_cpu_peak_memory_counts_each_allocation_once():
    """Eight 1024-wide linear layers on 4096 rows (16 MiB per activation):
    at inference at most two activations are alive at once."""
    import torch
    bench = _tool('benchmark')
    model = torch.nn.Sequential(*[torch.nn.Linear(1024, 1024) for _ in range(8)])
    x = torch.randn(4096, 1024)

    def forward():
        with torch.inference_mode():
            model(x)

    peak = bench._peak_memory(forward, torch.device('cpu'))
    assert 16 <= peak <= 48
