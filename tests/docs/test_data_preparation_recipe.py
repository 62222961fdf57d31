"""docs/data_preparation.md, run as written: the shell commands that build
the Kinetics-400 and SSv2 lists and the Python checks that follow, on a
small copy of each dataset's official formats (csv, json, H.264 mp4, VP9
webm) made here. A stale command, path or printed shape fails."""
import json
import os
import os.path as osp
import re
import shlex
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAGE = osp.join(ROOT, 'docs', 'data_preparation.md')
FENCE = re.compile(
    r'^(?P<indent>[ \t]*)```(?P<lang>\w+)\n(?P<body>.*?)^'
    r'(?P=indent)```', re.M | re.S)


def _blocks(lang):
    text = open(PAGE).read()
    return [
        '\n'.join(line[len(m['indent']):] for line in m['body'].splitlines())
        for m in FENCE.finditer(text) if m['lang'] == lang
    ]


_WRITER = """
import sys
import av
import numpy as np
path, codec, frames, width, height = sys.argv[1:]
rng = np.random.default_rng(0)
with av.open(path, 'w') as container:
    stream = container.add_stream(codec, rate=25)
    stream.width, stream.height = int(width), int(height)
    stream.pix_fmt = 'yuv420p'
    for _ in range(int(frames)):
        image = rng.integers(0, 255, (int(height), int(width), 3), np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format='rgb24')
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
"""


def _write_video(path, codec, frames=24, size=(64, 48)):
    """Encode a small noise video with PyAV, in a process of its own: in a
    test process where decord or OpenCV have loaded their own libvpx first,
    PyAV's VP9 encoder fails with an ABI mismatch."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    subprocess.run([
        sys.executable, '-c', _WRITER, path, codec,
        str(frames),
        str(size[0]),
        str(size[1])
    ],
                   check=True,
                   capture_output=True)


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """A folder laid out as the page says, with the official files of two
    small datasets under ``path/to/``; the repository's ``tools`` and
    ``configs`` linked in."""
    root = tmp_path_factory.mktemp('prep')
    for name in ('tools', 'configs'):
        os.symlink(osp.join(ROOT, name), root / name)
    src = root / 'path' / 'to'
    src.mkdir(parents=True)
    header = 'label,youtube_id,time_start,time_end,split\n'
    (src / 'train.csv').write_text(header + 'zumba,aaaaaaaaaaa,0,10,train\n'
                                   'abseiling,bbbbbbbbbbb,5,15,train\n')
    (src / 'validate.csv').write_text(header +
                                      'zumba,ccccccccccc,1,11,validate\n'
                                      'abseiling,gone0000000,1,11,validate\n')
    k400 = root / 'data' / 'kinetics400'
    _write_video(
        str(k400 / 'videos_train' / 'zumba' / 'aaaaaaaaaaa_000000_000010.mp4'),
        'libx264')
    _write_video(str(k400 / 'videos_train' / 'bbbbbbbbbbb.mp4'), 'libx264')
    _write_video(
        str(k400 / 'videos_val' / 'ccccccccccc_000001_000011.mp4'), 'libx264')
    labels = {
        'Pushing something from left to right': '0',
        'Holding '
        'something': '1'
    }
    (src / 'something-something-v2-labels.json').write_text(json.dumps(labels))
    for split, ids in (('train', ['2', '3']), ('validation', ['1'])):
        entries = [
            dict(
                id=i,
                label='holding a cup',
                template='Holding [something]',
                placeholders=['a cup']) for i in ids
        ]
        (src / f'something-something-v2-{split}.json').write_text(
            json.dumps(entries))
        for i in ids:
            _write_video(
                str(root / 'data' / 'sthv2' / 'videos' / f'{i}.webm'),
                'libvpx-vp9')
    return root


def _run_shell(body, cwd):
    for line in body.replace('\\\n', ' ').splitlines():
        if not line.strip() or line.strip().startswith('#'):
            continue
        argv = shlex.split(line, comments=True)
        assert argv[0] == 'python', line
        subprocess.run([sys.executable, *argv[1:]],
                       cwd=cwd,
                       check=True,
                       capture_output=True)


@pytest.fixture(scope='module')
def lists(workspace):
    """The workspace after the page's shell blocks (K400, then SSv2)."""
    shells = _blocks('shell')
    assert len(shells) == 2, 'the page has one K400 and one SSv2 block'
    for body in shells:
        _run_shell(body, workspace)
    return workspace


def test_the_list_commands_run_as_written(lists):
    workspace = lists
    k400 = workspace / 'data' / 'kinetics400'
    train = (k400 /
             'kinetics400_train_list_videos.txt').read_text().split('\n')
    # Classes in alphabetical order of their names, from the training csv.
    assert sorted(line for line in train if line) == [
        'bbbbbbbbbbb.mp4 0', 'zumba/aaaaaaaaaaa_000000_000010.mp4 1'
    ]
    # The missing validation video is left out.
    assert (k400 / 'kinetics400_val_list_videos.txt').read_text().split() \
        == ['ccccccccccc_000001_000011.mp4', '1']
    sthv2 = workspace / 'data' / 'sthv2'
    assert (sthv2 / 'sthv2_val_list_videos.txt').read_text().split() == \
        ['1.webm', '1']


def test_the_python_checks_print_what_the_page_says(lists):
    """Both snippets run unchanged (after the lists exist); the second
    prints the shape its comment gives, and the test loader's ThreeCrop
    gives the 3 views its next comment gives."""
    workspace = lists
    snippets = _blocks('python')
    assert len(snippets) == 2
    for snippet in snippets:
        result = subprocess.run([sys.executable, '-c', snippet],
                                cwd=workspace,
                                capture_output=True,
                                text=True)
        assert result.returncode == 0, result.stderr[-2000:]
    printed = result.stdout.strip().splitlines()[-1]
    said = re.search(r'# (\(1, 3, [\d, ]+\)): one view', snippets[1])[1]
    assert printed == f'1 torch.Size([{said[1:-1]}])'
    views = re.search(r'gives 3 views: (\([\d, ]+\))', snippets[1])[1]
    check_test_views = snippets[1].replace('val_dataloader', 'test_dataloader')
    result = subprocess.run([sys.executable, '-c', check_test_views],
                            cwd=workspace,
                            capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == \
        f'1 torch.Size([{views[1:-1]}])'
