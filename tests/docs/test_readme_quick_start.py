"""README's quick start, run as written: its three config lines on top of
MMAction2's own VideoMAE ViT-B config, saved as ``my_sttm_config.py``, then
its ``get_flops.py`` and ``tools/test.py`` commands, unchanged, with a
checkpoint of the unmerged recognizer (random weights: the test checks that
it runs and merges, not an accuracy) and one Kinetics-style video where
MMAction2's config looks for its test list. Also in ``make test-low``: the
quick start on the low end of the supported versions."""
import os
import os.path as osp
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MMACTION2_CONFIGS = 'path/to/mmaction2/configs/'


def _quick_start():
    """The quick start's config block and its commands."""
    text = open(osp.join(ROOT, 'README.md')).read()
    section = text.split('## Quick start', 1)[1].split('\n## ', 1)[0]
    config = re.search(r'```python\n(.*?)```', section, re.S)[1]
    commands = [
        line.strip()
        for body in re.findall(r'```shell\n(.*?)```', section, re.S)
        for line in body.splitlines()
        if line.strip().startswith('python tools/')
    ]
    return config, commands


def test_the_quick_start_has_what_it_promises():
    config, commands = _quick_start()
    assert "type='MergingVisionTransformer'" in config
    assert config.count('\n') == 3, 'three config lines'
    assert [c.split()[1] for c in commands
            ] == ['tools/analysis_tools/get_flops.py', 'tools/test.py']


@pytest.fixture(scope='module')
def user_folder(tmp_path_factory):
    """A folder as a user has it after `git clone`: the repository's tools,
    the config saved as the README says, a checkpoint of the unmerged
    recognizer and one test video where MMAction2's config reads them."""
    import mmaction
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from mmaction_sttm.registry import MODELS
    folder = tmp_path_factory.mktemp('user')
    os.symlink(osp.join(ROOT, 'tools'), folder / 'tools')
    configs = osp.join(osp.dirname(mmaction.__file__), '.mim', 'configs')
    config, _ = _quick_start()
    (folder / 'my_sttm_config.py').write_text(
        config.replace(MMACTION2_CONFIGS, configs + '/'))
    # The unmerged recognizer the user trained (its base config).
    base = re.search(r"_base_ = '([^']+)'",
                     config)[1].replace(MMACTION2_CONFIGS, configs + '/')
    cfg = Config.fromfile(base)
    init_default_scope('mmaction')
    model = MODELS.build(cfg.model)
    torch.save(
        dict(state_dict=model.state_dict(), meta=dict()),
        folder / 'your_checkpoint.pth')
    # One video in the layout of MMAction2's Kinetics-400 test list.
    data = folder / 'data' / 'kinetics400'
    (data / 'videos_val').mkdir(parents=True)
    _write_mp4(str(data / 'videos_val' / 'v.mp4'))
    ann = cfg.test_dataloader.dataset.ann_file
    (folder / ann).write_text('v.mp4 0\n')
    assert cfg.test_dataloader.dataset.data_prefix.video == \
        'data/kinetics400/videos_val'
    return folder


def _write_mp4(path, frames=64, size=(320, 240)):
    import av
    rng = np.random.default_rng(0)
    with av.open(path, 'w') as container:
        stream = container.add_stream('libx264', rate=25)
        stream.width, stream.height = size
        stream.pix_fmt = 'yuv420p'
        for _ in range(frames):
            image = rng.integers(0, 255, (size[1], size[0], 3), np.uint8)
            container.mux(
                stream.encode(
                    av.VideoFrame.from_ndarray(image, format='rgb24')))
        container.mux(stream.encode())


def _run(command, folder):
    argv = shlex.split(command)
    assert argv[0] == 'python'
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    return subprocess.run([sys.executable, *argv[1:]],
                          cwd=folder,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=900)


def test_get_flops_as_written_merges(user_folder):
    """The GFLOPs fall: the config lines really merge (no silent no-op)."""
    _, commands = _quick_start()
    proc = _run(commands[0], user_folder)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ratio = re.search(r'ratio (\d\.\d+)', proc.stdout + proc.stderr)
    assert ratio is not None, proc.stdout[-2000:]
    assert float(ratio[1]) < 0.8


def test_test_py_as_written_runs(user_folder):
    _, commands = _quick_start()
    proc = _run(commands[1], user_folder)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'acc/top1' in proc.stdout + proc.stderr
