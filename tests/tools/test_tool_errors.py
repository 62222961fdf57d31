"""Every tool turns a missing config, checkpoint, data or weights path into
one line on stderr naming the path, with exit status 2 (mmaction_sttm.tooling).
"""
import functools
import os.path as osp
import subprocess
import sys

import pytest
from mmengine.config import Config
from tool_modules import load_tool

from mmaction_sttm import tooling
from mmaction_sttm.conversion.weights import DST_FORMATS
from mmaction_sttm.tooling.weights import _weight_paths

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SYNTHETIC = osp.join(ROOT, 'configs', 'synthetic',
                     'vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py')
ZOO = osp.join(ROOT, 'configs', 'sttm')
VIT_S = osp.join(
    ZOO, 'sttm_vit-small-p16_in1k-pre_8xb8-8x8x1-30e_'
    'kinetics400-rgb.py')
TIMESFORMER = osp.join(
    ZOO, 'sttm_timesformer-base-p16_in1k-pre_8xb8-8x8x1-'
    '30e_kinetics400-rgb.py')


def _run(tool: str, *args: str, cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, osp.join(ROOT, tool), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300)


@functools.lru_cache()
def _module(tool: str):
    return load_tool('tool_' + osp.basename(tool)[:-3], osp.join(ROOT, tool))


def _main(tool: str, *args: str, capsys) -> subprocess.CompletedProcess:
    """The tool's ``main`` in this process (imports are paid once), run as
    its ``__main__`` block does; same result type as :func:`_run`."""
    module = _module(tool)
    runner = getattr(module, 'tooling', tooling)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        runner.run(module.main, list(args))
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, exit_info.value.code, out.out,
                                       out.err)


def _assert_one_line(proc: subprocess.CompletedProcess, *names: str) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr
    # Import-time warnings may come first; the error is the last line.
    line = lines[-1]
    assert ': error: ' in line
    for name in names:
        assert name in line
    return line


def test_train_missing_config_from_the_shell(tmp_path):
    """The issue's case, as a user types it: one line, no traceback."""
    proc = _run('tools/train.py', 'configs/nope.py', cwd=str(tmp_path))
    _assert_one_line(proc, 'config configs/nope.py does not exist')
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize('tool,extra', [
    ('tools/train.py', []),
    ('tools/test.py', ['x.pth']),
    ('tools/analysis_tools/get_flops.py', []),
    ('tools/analysis_tools/benchmark.py', []),
])
def test_missing_config(tool, extra, capsys):
    proc = _main(tool, 'configs/nope.py', *extra, capsys=capsys)
    _assert_one_line(proc, 'config configs/nope.py does not exist')


def test_missing_checkpoint(capsys):
    proc = _main('tools/test.py', SYNTHETIC, 'nope.pth', capsys=capsys)
    _assert_one_line(proc, 'checkpoint nope.pth does not exist')


def test_missing_test_data(tmp_path, capsys):
    ckpt = tmp_path / 'x.pth'
    ckpt.write_bytes(b'')
    proc = _main(
        'tools/test.py',
        SYNTHETIC,
        str(ckpt),
        '--cfg-options',
        f'test_dataloader.dataset.ann_file={tmp_path}/none.txt',
        capsys=capsys)
    _assert_one_line(proc, 'test_dataloader.dataset.ann_file',
                     f'{tmp_path}/none.txt')


def test_train_missing_pretrained_names_the_converter(capsys):
    proc = _main('tools/train.py', TIMESFORMER, capsys=capsys)
    line = _assert_one_line(proc,
                            'checkpoints/vit-base-p16_in1k_timesformer.pth',
                            'model.backbone.pretrained')
    assert ('python tools/convert_weights.py deit_base_patch16_224.pth '
            'checkpoints/vit-base-p16_in1k_timesformer.pth --src-format '
            'timm --dst timesformer') in line


def test_train_missing_load_from(tmp_path, capsys):
    proc = _main(
        'tools/train.py',
        SYNTHETIC,
        '--cfg-options',
        f'load_from={tmp_path}/trained.pth',
        capsys=capsys)
    _assert_one_line(proc, f'{tmp_path}/trained.pth')


def test_data_tools(tmp_path, capsys):
    proc = _main(
        'tools/data/check_videos.py',
        str(tmp_path / 'list.txt'),
        str(tmp_path),
        capsys=capsys)
    _assert_one_line(proc, 'video list', 'list.txt')
    proc = _main(
        'tools/data/build_video_lists.py',
        'sthv2',
        '--json',
        'val.json',
        '--labels',
        'labels.json',
        '--out',
        'x.txt',
        capsys=capsys)
    _assert_one_line(proc, '--json val.json does not exist')
    proc = _main(
        'tools/convert_weights.py',
        'deit.pth',
        'out.pth',
        '--src-format',
        'timm',
        '--dst',
        'timesformer',
        capsys=capsys)
    _assert_one_line(proc, 'source checkpoint deit.pth does not exist')


def test_missing_base_config(tmp_path):
    config = tmp_path / 'child.py'
    config.write_text("_base_ = ['./missing_base.py']\n")
    with pytest.raises(tooling.ToolError, match='missing_base.py'):
        tooling.load_config(str(config))


@pytest.mark.parametrize('config,dst,source', [
    (VIT_S, 'spacetime-vit', 'deit_small_patch16_224.pth'),
    (TIMESFORMER, 'timesformer', 'deit_base_patch16_224.pth'),
])
def test_converter_command_per_backbone(config, dst, source):
    cfg = Config.fromfile(config)
    out = cfg.model.backbone.pretrained
    command = tooling.converter_command(cfg.model.backbone, out)
    assert dst in DST_FORMATS
    assert command == (f'python tools/convert_weights.py {source} {out} '
                       f'--src-format timm --dst {dst}')


def test_converter_command_videomae():
    backbone = dict(
        type='MergingVisionTransformer',
        embed_dims=768,
        num_frames=8,
        tubelet_size=2)
    assert tooling.converter_command(backbone, 'w.pth').endswith(
        '--dst videomae-vit --num-frames 8 --tubelet-size 2 '
        '--videomae-pos-embed sincos')
    assert tooling.converter_command(dict(type='SomethingElse'),
                                     'w.pth') is None


def test_disable_pretrained_reads_no_file():
    model = dict(
        backbone=dict(type='SpaceTimeViT', pretrained='a.pth'),
        cls_head=dict(init_cfg=[
            dict(type='Pretrained', checkpoint='b.pth'),
            dict(type='Normal', std=0.01)
        ]),
        neck=dict(init_cfg=dict(type='Pretrained', checkpoint='c.pth')),
        extra=dict(pretrained=True))
    assert len(list(_weight_paths(model))) == 3
    tooling.disable_pretrained(model)
    assert list(_weight_paths(model)) == []
    assert model['backbone']['pretrained'] is None
    assert model['cls_head']['init_cfg'] == [dict(type='Normal', std=0.01)]
    assert model['neck']['init_cfg'] is None
    assert model['extra']['pretrained'] is False


def test_check_data_paths_through_wrappers(tmp_path):
    (tmp_path / 'videos').mkdir()
    (tmp_path / 'ann.txt').write_text('a.mp4 0\n')
    cfg = Config(
        dict(
            train_dataloader=dict(
                dataset=dict(
                    type='RepeatDataset',
                    times=2,
                    dataset=dict(
                        data_root=str(tmp_path),
                        ann_file='ann.txt',
                        data_prefix=dict(video='videos'))))))
    tooling.check_data_paths(cfg, ['train', 'val'])  # no val loader: skipped
    cfg.train_dataloader.dataset.dataset.data_prefix.video = 'gone'
    with pytest.raises(
            tooling.ToolError,
            match=r'data_prefix.video .*gone does not exist'):
        tooling.check_data_paths(cfg, ['train'])


def test_run_reports_one_line(capsys):

    def main(argv):
        raise FileNotFoundError(2, 'No such file or directory', 'x.mp4')

    with pytest.raises(SystemExit) as exit_info:
        tooling.run(main, [])
    assert exit_info.value.code == tooling.EXIT_USAGE
    assert capsys.readouterr().err.strip().endswith(
        'error: x.mp4 does not exist')


@pytest.mark.parametrize('script,args,name', [
    ('tools/dist_train.sh', ['configs/nope.py', '2'], 'config'),
    ('tools/dist_test.sh', [SYNTHETIC, 'nope.pth', '2'], 'checkpoint'),
    ('tools/slurm_train.sh', ['p', 'job', 'configs/nope.py'], 'config'),
    ('tools/slurm_test.sh', ['p', 'job', SYNTHETIC, 'nope.pth'], 'checkpoint'),
])
def test_launch_scripts_check_paths_first(script, args, name, tmp_path):
    """The shell launchers stop before torchrun / srun starts."""
    proc = subprocess.run(['bash', osp.join(ROOT, script), *args],
                          cwd=str(tmp_path),
                          capture_output=True,
                          text=True,
                          timeout=60)
    line = _assert_one_line(proc, f'{name} ')
    assert len(proc.stderr.strip().splitlines()) == 1
    assert line.endswith('does not exist')
