"""Wrong inputs fail fast: one line on stderr and exit status 2, run as a
user runs the tools (subprocesses), for each case of issue 24:

- a checkpoint that holds few of the model's weights (``tools/test.py``,
  ``tools/visualize_merging.py``), while a merger added to a trained model
  still loads (its own weights are not counted);
- ``get_flops.py --shape`` in MMAction2's 2D form, or one the model cannot
  take;
- a config that does not build, in every tool (``--traceback`` shows the
  traceback);
- ``convert_weights.py`` on a source in another layout.

``benchmark.py`` reading its clip from the test pipeline is tested here too.
"""
import json
import os
import os.path as osp
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from tool_modules import load_tool

from mmaction_sttm import tooling
from mmaction_sttm.datasets import pipeline_steps

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SYNTHETIC = osp.join(ROOT, 'configs', 'synthetic')
VIT = osp.join(SYNTHETIC,
               'vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py')
STTM = osp.join(SYNTHETIC,
                'sttm_vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py')
SPACETIME = osp.join(
    SYNTHETIC, 'spacetime-vit-tiny-p8_scratch_2xb8-8x2x1-20e_'
    'synthetic-motion-rgb.py')
SPACETIME_STTM = osp.join(
    SYNTHETIC, 'sttm_spacetime-vit-tiny-p8_scratch_2xb8-8x2x1-20e_'
    'synthetic-motion-rgb.py')
UNKNOWN_KEY = 'model.backbone.merger.ratoi=0.3'


def _run(tool: str, *args: str, cwd: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    return subprocess.run(
        [sys.executable, osp.join(ROOT, tool), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300)


def _one_line(proc: subprocess.CompletedProcess, *parts: str) -> str:
    """The error line of a run that must end in one: status 2, no
    traceback, the line names every part."""
    assert proc.returncode == tooling.EXIT_USAGE, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    # Import-time warnings may come first; the error is the last line.
    line = proc.stderr.strip().splitlines()[-1]
    assert ': error: ' in line, proc.stderr[-3000:]
    for part in parts:
        assert part in line, line
    return line


def _build(config: str):
    from mmengine.registry import init_default_scope

    from mmaction_sttm.registry import MODELS
    init_default_scope('mmaction')
    return MODELS.build(Config.fromfile(config).model)


# --- checkpoints that do not fit the model ----------------------------------


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """Checkpoints for the tiny VisionTransformer configs: the baseline's
    own weights (no merger), another model's, and a third of the
    baseline's."""
    folder = tmp_path_factory.mktemp('ckpt')
    torch.manual_seed(0)
    state = _build(VIT).state_dict()
    paths = dict(
        baseline=folder / 'baseline.pth',
        other=folder / 'other.pth',
        third=folder / 'third.pth')
    torch.save(dict(state_dict=state, meta=dict()), paths['baseline'])
    other = _build(SPACETIME).state_dict()
    torch.save(dict(state_dict=other), paths['other'])
    keys = sorted(state)
    third = {k: state[k] for k in keys[:len(keys) // 3]}
    torch.save(dict(state_dict=third), paths['third'])
    return {name: str(path) for name, path in paths.items()}


def test_checkpoint_match_counts_like_a_direct_count(checkpoints):
    """The count of matching keys, against one made by hand: the merger's
    weights (``backbone.merge_schedule.*``) are left out of the model's
    keys."""
    model = _build(STTM)
    state = torch.load(checkpoints['third'], weights_only=True)['state_dict']
    own = [
        k for k in model.state_dict()
        if not k.startswith('backbone.merge_schedule.')
    ]
    assert len(own) < len(model.state_dict())
    expected = sum(1 for k in own if k in state)
    assert tooling.checkpoint_match(model, state) == (expected, len(own))
    # DDP's 'module.' prefix is looked through, as MMEngine's loader does.
    prefixed = {f'module.{k}': v for k, v in state.items()}
    assert tooling.checkpoint_match(model, prefixed) == (expected, len(own))
    # The baseline's checkpoint holds every non-merger weight of the
    # merging model: a merger added off the shelf loads it.
    baseline = torch.load(
        checkpoints['baseline'], weights_only=True)['state_dict']
    assert tooling.checkpoint_match(model, baseline) == (len(own), len(own))
    tooling.check_checkpoint(model, checkpoints['baseline'])
    with pytest.raises(
            tooling.ToolError,
            match=rf'matches {expected} of '
            rf'{len(own)} model keys \(need at least 50%'):
        tooling.check_checkpoint(model, checkpoints['third'])


def test_visualize_merging_refuses_another_models_checkpoint(
        checkpoints, tmp_path):
    model = _build(VIT)
    proc = _run(
        'tools/visualize_merging.py',
        STTM,
        checkpoints['other'],
        STTM,
        '--out',
        str(tmp_path),
        cwd=str(tmp_path))
    total = len(model.state_dict())
    _one_line(proc, f'checkpoint {checkpoints["other"]} matches ',
              f' of {total} model keys', 'wrong model or config?')
    assert not (tmp_path / 'merge_sheet.png').exists()


def test_test_tool_refuses_a_partial_checkpoint(checkpoints, tmp_path,
                                                tiny_dataset,
                                                data_cfg_options):
    proc = _run(
        'tools/test.py',
        STTM,
        checkpoints['third'],
        '--work-dir',
        str(tmp_path),
        '--cfg-options',
        *data_cfg_options(tiny_dataset),
        cwd=str(tmp_path))
    _one_line(proc, f'checkpoint {checkpoints["third"]} matches ',
              '(need at least 50%; merger weights not counted)')


# --- get_flops.py --shape ---------------------------------------------------


@pytest.mark.parametrize('shape,parts', [
    (['1', '3', '224', '224'
      ], ['4 numbers are N C H W in MMAction2', 'give N C T H W']),
    (['1', '4', '8', '32', '32'
      ], ['cannot run on input 1x4x8x32x32', 'expects 3 input channels']),
    (['1', '3', '8', '30', '32'
      ], ['cannot run on input 1x3x8x30x32', 'multiples of patch_size']),
])
def test_get_flops_shape_it_cannot_count(shape, parts, tmp_path):
    proc = _run(
        'tools/analysis_tools/get_flops.py',
        SPACETIME_STTM,
        '--shape',
        *shape,
        cwd=str(tmp_path))
    _one_line(proc, *parts)


# --- config errors ----------------------------------------------------------


def _config_error(proc: subprocess.CompletedProcess) -> None:
    _one_line(proc, "unknown key 'ratoi' for STTM", "did you mean 'ratio'?")
    assert 'class `' not in proc.stderr  # MMEngine's builder prefixes


@pytest.mark.parametrize('tool,extra', [
    ('tools/analysis_tools/get_flops.py', []),
    ('tools/analysis_tools/benchmark.py', ['--repeats', '1', '--warmup', '0']),
])
def test_config_error_is_one_line(tool, extra, tmp_path):
    proc = _run(
        tool, STTM, *extra, '--cfg-options', UNKNOWN_KEY, cwd=str(tmp_path))
    _config_error(proc)


def test_config_error_train_test_visualize(checkpoints, tmp_path, tiny_dataset,
                                           data_cfg_options):
    data = data_cfg_options(tiny_dataset)
    _config_error(
        _run(
            'tools/train.py',
            STTM,
            '--work-dir',
            str(tmp_path),
            '--cfg-options',
            UNKNOWN_KEY,
            *data,
            cwd=str(tmp_path)))
    _config_error(
        _run(
            'tools/test.py',
            STTM,
            checkpoints['baseline'],
            '--work-dir',
            str(tmp_path),
            '--cfg-options',
            UNKNOWN_KEY,
            *data,
            cwd=str(tmp_path)))
    _config_error(
        _run(
            'tools/visualize_merging.py',
            STTM,
            checkpoints['baseline'],
            STTM,
            '--out',
            str(tmp_path),
            '--cfg-options',
            UNKNOWN_KEY,
            cwd=str(tmp_path)))


def _short(proc: subprocess.CompletedProcess, *parts: str) -> None:
    """At most 3 lines of output in all, the last the error naming
    ``parts`` (issue 36: no environment or config dump first)."""
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) <= 3, '\n'.join(lines[:20])
    _one_line(proc, *parts)


def test_errors_come_before_any_dump_or_work_dir(checkpoints, tmp_path,
                                                 tiny_dataset,
                                                 data_cfg_options):
    """A merger typo (train, test) and a checkpoint that does not fit, is
    cut short, is not a checkpoint at all or pickles code (test): each is
    one line, before the Runner prints anything or makes its work dir; a
    broken file is not called unsafe, nor an unsafe one broken."""
    items = data_cfg_options(tiny_dataset)
    data = ['--cfg-options', *items]
    work = tmp_path / 'work'
    typo = ['--cfg-options', UNKNOWN_KEY, *items]
    _short(
        _run(
            'tools/train.py',
            STTM,
            '--work-dir',
            str(work),
            *typo,
            cwd=str(tmp_path)), "did you mean 'ratio'?")
    _short(
        _run(
            'tools/test.py',
            STTM,
            checkpoints['baseline'],
            '--work-dir',
            str(work),
            *typo,
            cwd=str(tmp_path)), "did you mean 'ratio'?")
    good = open(checkpoints['baseline'], 'rb').read()
    (tmp_path / 'cut.pth').write_bytes(good[:len(good) // 2])
    (tmp_path / 'page.pth').write_bytes(b'<html>503 Service Unavailable')
    for name in ('cut.pth', 'page.pth'):
        proc = _run(
            'tools/test.py',
            STTM,
            str(tmp_path / name),
            '--work-dir',
            str(work),
            *data,
            cwd=str(tmp_path))
        _short(proc, name, 'is not a checkpoint', 'truncated or corrupt')
        assert 'unsafe' not in proc.stderr and 'run code' not in proc.stderr
    _short(
        _run(
            'tools/test.py',
            STTM,
            checkpoints['other'],
            '--work-dir',
            str(work),
            *data,
            cwd=str(tmp_path)), 'model keys')
    if torch.__version__ >= '2.6':
        evil = tmp_path / 'evil.pth'
        torch.save(dict(state_dict={}, meta=os.getcwd), evil)
        proc = _run(
            'tools/test.py',
            STTM,
            str(evil),
            '--work-dir',
            str(work),
            *data,
            cwd=str(tmp_path))
        _short(proc, 'evil.pth is unsafe', 'could run code')
    assert not work.exists()


def test_unregistered_type_is_one_line(tmp_path):
    config = tmp_path / 'typo.py'
    config.write_text(f"_base_ = ['{SPACETIME_STTM}']\n"
                      "model = dict(backbone=dict(type='SpaceTimeVit'))\n")
    proc = _run(
        'tools/analysis_tools/get_flops.py', str(config), cwd=str(tmp_path))
    _one_line(proc, 'config: SpaceTimeVit is not in the mmaction::model '
              'registry')


def test_merger_on_mmaction2s_backbone_is_one_line(tmp_path):
    """No silent no-op: MMAction2's VisionTransformer ignores a ``merger``
    it is given; the tools refuse the config first and name the class to
    use, from the file or from --cfg-options, and make no work dir."""
    config = tmp_path / 'noop.py'
    config.write_text(
        f"_base_ = ['{VIT}']\n"
        "model = dict(backbone=dict(merger=dict(type='STTM', layers=(2, ),"
        " ratio=0.5)))\n")
    want = ("model.backbone.merger: VisionTransformer cannot merge; use "
            "type='MergingVisionTransformer'")
    _one_line(
        _run(
            'tools/analysis_tools/get_flops.py',
            str(config),
            cwd=str(tmp_path)), want)
    _one_line(
        _run(
            'tools/analysis_tools/get_flops.py',
            VIT,
            '--cfg-options',
            'model.backbone.merger.type=STTM',
            cwd=str(tmp_path)), want)
    work = tmp_path / 'work'
    proc = _run(
        'tools/test.py',
        str(config),
        'missing.pth',
        '--work-dir',
        str(work),
        cwd=str(tmp_path))
    assert len(proc.stderr.strip().splitlines()) <= 3, proc.stderr
    _one_line(proc, want)
    assert not work.exists()


def test_package_base_lookup_crash_is_one_line_with_the_fix(tmp_path):
    """MMEngine 0.10 crashes on ``mmaction::`` bases when a model-index
    entry's Config is a list (MMAction2 1.1 / 1.2): one line naming the
    file to use instead, and that file loads."""
    name = ('recognition/videomae/'
            'vit-base-p16_videomae-k400-pre_16x4x1_kinetics-400.py')
    config = tmp_path / 'external.py'
    config.write_text(f"_base_ = ['mmaction::{name}']\n")
    try:
        Config.fromfile(str(config))
    except AttributeError:
        pass
    else:  # an MMEngine / MMAction2 without the crash: nothing to mend
        tooling.load_config(str(config))
        return
    with pytest.raises(tooling.ToolError) as info:
        tooling.load_config(str(config))
    message = str(info.value)
    assert '\n' not in message and 'name each base by its file' in message
    fixed = message.rsplit(' -> ', 1)[1].strip("'")
    assert fixed.endswith(name)
    config.write_text(f"_base_ = ['{fixed}']\n")
    assert tooling.load_config(str(config)).model.backbone.type == \
        'VisionTransformer'


def test_config_that_is_not_python(tmp_path):
    config = tmp_path / 'broken.py'
    config.write_text('model = dict(\n')
    with pytest.raises(
            tooling.ToolError,
            match=rf'config {config}, line 1 is '
            'not valid Python: '):
        tooling.load_config(str(config))


def test_traceback_flag_shows_the_traceback(tmp_path):
    proc = _run(
        'tools/analysis_tools/get_flops.py',
        STTM,
        '--cfg-options',
        UNKNOWN_KEY,
        '--traceback',
        cwd=str(tmp_path))
    assert proc.returncode != 0
    assert 'Traceback (most recent call last)' in proc.stderr
    assert "did you mean 'ratio'?" in proc.stderr


# --- convert_weights.py -----------------------------------------------------


def test_convert_weights_names_the_layouts(tmp_path):
    import timm
    vit = timm.create_model(
        'vit_tiny_patch16_224', pretrained=False, img_size=32, depth=2)
    timm_file = str(tmp_path / 'timm.pth')
    torch.save(vit.state_dict(), timm_file)
    proc = _run(
        'tools/convert_weights.py',
        timm_file,
        str(tmp_path / 'out.pth'),
        '--src-format',
        'mmpretrain',
        '--dst',
        'timesformer',
        cwd=str(tmp_path))
    _one_line(
        proc, 'expected the mmpretrain layout (keys like '
        'backbone.layers.0.ln1.weight), found the timm layout',
        "src_format 'timm'")
    other = str(tmp_path / 'resnet.pth')
    torch.save({
        'conv1.weight': torch.zeros(1),
        'fc.bias': torch.zeros(1)
    }, other)
    proc = _run(
        'tools/convert_weights.py',
        other,
        str(tmp_path / 'o.pth'),
        '--src-format',
        'timm',
        '--dst',
        'timesformer',
        cwd=str(tmp_path))
    _one_line(
        proc, 'expected the timm layout (keys like '
        'blocks.0.attn.qkv.weight), found none of the ViT layouts',
        '2 tensors, e.g. conv1.weight, fc.bias')
    assert not (tmp_path / 'o.pth').exists()


# --- benchmark.py: the clip of the test pipeline ----------------------------


def _benchmark_tool():
    return load_tool('tool_benchmark',
                     osp.join(ROOT, 'tools', 'analysis_tools', 'benchmark.py'))


def test_benchmark_times_the_clip_of_the_test_pipeline(tmp_path):
    bench = _benchmark_tool()
    out = str(tmp_path / 'bench')
    bench.main([
        SPACETIME, SPACETIME_STTM, '--warmup', '0', '--repeats', '1',
        '--device', 'cpu', '--memory-only', '--out', out
    ])
    with open(osp.join(out, 'benchmark.json')) as f:
        run = json.load(f)
    cfg = Config.fromfile(SPACETIME)
    # The sampler is inside the pipeline's DecodeWithFallback step.
    frames = next(
        step.clip_len
        for step in pipeline_steps(cfg.test_dataloader.dataset.pipeline)
        if step.type == 'SampleFrames')
    size = cfg.model.backbone.img_size
    assert run['args']['shape'] == [3, frames, size, size]
    # Configs that read different clips are refused unless --shape says.
    entries = [
        SimpleNamespace(name='a', clip=(3, 8, 32, 32)),
        SimpleNamespace(name='b', clip=(3, 16, 32, 32))
    ]
    with pytest.raises(
            tooling.ToolError,
            match=r'different clips \(a: '
            r'3x8x32x32, b: 3x16x32x32\)'):
        bench.clip_shape(None, entries)
    assert bench.clip_shape([3, 4, 32, 32], entries) == [3, 4, 32, 32]
    entries[1].clip = None
    with pytest.raises(tooling.ToolError, match='of b gives no clip length'):
        bench.clip_shape(None, entries)
