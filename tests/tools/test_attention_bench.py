"""tools/analysis_tools/attention_bench.py: each kernel it times computes the
per-video reference; ``--kernels`` times only those named and lists the
others as not run; an unknown name is one line that names it."""
import os.path as osp

import pytest
from tool_modules import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool():
    path = osp.join(ROOT, 'tools', 'analysis_tools', 'attention_bench.py')
    return load_tool('tool_attention_bench', path)


def test_only_the_kernels_asked_for_run():
    bench = _tool()
    args = bench.parse_args([
        '--lengths', '12', '5', '9', '--repeats', '1', '--kernels', 'bucketed',
        'padded'
    ])
    rows = {row['kernel']: row for row in bench.bench(args)}
    for kernel in ('bucketed', 'padded'):
        assert 'skipped' not in rows[kernel], rows[kernel]
        assert rows[kernel]['max_abs_diff'] < 1e-5
    for kernel in ('nested', 'flex', 'dense'):
        assert rows[kernel]['skipped'] == 'not run (--kernels)'
    text = bench.table(list(rows.values()), args)
    assert '| flex | | | not run (--kernels) |' in text


def test_an_unknown_kernel_is_one_line(capsys):
    bench = _tool()
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(['--kernels', 'bucketed', 'flash'])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert 'unknown flash' in err and 'bucketed' in err
