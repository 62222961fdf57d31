"""The CPU side of tools/analysis_tools/gpu_check.sh: argument parsing, the
correctness check (CPU against CPU), the speed commands and the report."""
import os.path as osp
import subprocess

import pytest
from tool_modules import load_tool

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool():
    path = osp.join(ROOT, 'tools', 'analysis_tools', 'gpu_check.py')
    return load_tool('tool_gpu_check', path)


def test_dry_run_on_cpu_writes_the_report(tmp_path):
    gpu_check = _tool()
    out = str(tmp_path / 'check')
    code = gpu_check.main([
        '--device', 'cpu', '--dry-run', '--skip-speed', '--skip-fsdp', '--out',
        out
    ])
    report = open(osp.join(out, 'report.md')).read()
    assert code == 0, report
    for family in gpu_check.FAMILIES:
        assert f'| {family} | 0.00e+00 | yes |' in report
    assert 'skipped: Triton kernels need CUDA' in report or \
        'skipped: Triton is not importable' in report
    assert 'Not run (`--skip-speed`).' in report
    # The packed attention kernels, each checked against one call per video
    assert '| bucketed |' in report and 'one call per video' in report
    assert '| flex | | | not run (--kernels) |' in report
    assert 'Not run (`--skip-fsdp`).' in report


@pytest.mark.fsdp
def test_sharded_training_row_on_cpu(tmp_path):
    """The FSDP + bf16 + checkpointing row: one epoch of the zoo's strategy
    through tools/dist_train.sh on one process, a sharded checkpoint."""
    gpu_check = _tool()
    out = str(tmp_path / 'check')
    args = gpu_check.parse_args(['--device', 'cpu', '--out', out])
    fsdp = gpu_check.run_fsdp(args, out)
    assert fsdp['returncode'] == 0 and fsdp['sharded'], fsdp['stderr']
    assert len(fsdp['losses']) == 4  # 8 training videos, batches of 2
    assert osp.exists(osp.join(out, 'fsdp_work', 'epoch_1.pth', 'rank0.pth'))
    text = gpu_check.write_report(
        osp.join(out, 'report.md'), args, [], dict(status='x', detail='y'), [],
        '', fsdp)
    assert 'sharded checkpoint written.' in text


def test_a_family_that_disagrees_fails_the_check(tmp_path, monkeypatch):
    gpu_check = _tool()
    monkeypatch.setitem(gpu_check.FAMILIES, 'broken',
                        dict(type='NoSuchBackbone'))
    # The attention kernels are the dry run's above; here only the
    # families' check decides.
    monkeypatch.setattr(gpu_check, 'run_attention', lambda args: '')
    out = str(tmp_path / 'check')
    code = gpu_check.main([
        '--device', 'cpu', '--dry-run', '--skip-speed', '--skip-fsdp', '--out',
        out
    ])
    assert code == 1
    assert '| broken | nan | NO (KeyError' in open(osp.join(
        out, 'report.md')).read()


@pytest.mark.parametrize('dry_run', [True, False])
def test_speed_commands(dry_run, tmp_path):
    gpu_check = _tool()
    args = gpu_check.parse_args(['--device', 'cpu'] +
                                (['--dry-run'] if dry_run else []))
    runs = gpu_check.speed_commands(args, str(tmp_path))
    pairs = gpu_check.DRY_PAIRS if dry_run else gpu_check.SPEED_PAIRS
    rlt = [] if dry_run else runs[2 * len(pairs):]
    runs = runs[:2 * len(pairs)]
    assert len(runs) == 2 * len(pairs)  # eager and compiled
    for (tag, argv), compiled in zip(runs, [False, True] * len(pairs)):
        assert ('--compile' in argv) == compiled
        assert tag.endswith('compiled' if compiled else 'eager')
        assert argv[argv.index('--amp') + 1] == 'bf16'
        assert argv[argv.index('--batch-sizes') + 1] == '8'
        assert '--breakdown' in argv
        for config in argv[:2]:
            assert osp.exists(config), config
    module = load_tool(
        'tool_benchmark',
        osp.join(ROOT, 'tools', 'analysis_tools', 'benchmark.py'))
    parsed = module.parse_args(runs[-1][1])  # benchmark.py accepts them
    assert parsed.compile and parsed.amp == 'bf16' and parsed.breakdown
    # RLT: baseline, RLT and RLT + STTM, padded and packed, on a batch
    # that mixes static- and drifting-camera videos, eager and compiled,
    # batch 1, 8 and 32.
    assert [tag for tag, _ in rlt
            ] == ([] if dry_run else ['rlt_eager', 'rlt_compiled'])
    for tag, argv in rlt:
        parsed = module.parse_args(argv)
        assert [osp.relpath(c, ROOT) for c in parsed.configs] == \
            gpu_check.RLT_CONFIGS
        assert parsed.batch_sizes == [1, 8, 32] and parsed.videos
        assert parsed.compile == tag.endswith('compiled')
        for config in parsed.configs:
            assert osp.exists(config), config


def test_speed_failures_are_reported(tmp_path):
    gpu_check = _tool()
    args = gpu_check.parse_args(['--device', 'cpu', '--dry-run'])
    text = gpu_check.write_report(
        str(tmp_path / 'r.md'), args,
        [dict(family='x', max_abs_diff=0.0, ok=True)],
        dict(status='skipped', detail='no CUDA'), [
            dict(tag='vit_eager', returncode=0, seconds=1.0, table='| t |'),
            dict(
                tag='vit_compiled',
                returncode=1,
                seconds=2.0,
                table='',
                stderr='boom')
        ])
    assert '| t |' in text and 'Failed (exit 1)' in text and 'boom' in text


def test_shell_wrapper_without_cuda_says_so():
    proc = subprocess.run([
        'bash',
        osp.join(ROOT, 'tools', 'analysis_tools', 'gpu_check.sh'), '--help'
    ],
                          capture_output=True,
                          text=True,
                          env=dict(
                              __import__('os').environ,
                              PYTHON=__import__('sys').executable))
    assert proc.returncode == 0 and '--dry-run' in proc.stdout
