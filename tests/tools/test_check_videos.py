"""tools/data/check_videos.py finds exactly the videos the test breaks."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from bad_videos import (BAD_KINDS, corrupt_videos, write_decord_unreadable,
                        write_video)
from tool_modules import load_tool

from mmaction_sttm.datasets import probe_video
from mmaction_sttm.generators import (SyntheticSpec, make_synthetic_dataset,
                                      render_video)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'data', 'check_videos.py')

# What the scan reports for each way of breaking a file.
EXPECTED_KIND = {
    'missing': 'missing',
    'empty': 'empty',
    'truncated': 'unreadable',
    'garbage': 'unreadable',
    'one-frame': 'too-short',
    'resized': 'wrong-size',
}


@pytest.fixture(scope='module')
def tool():
    return load_tool('check_videos', TOOL)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    """10 training videos of 32 px, the first 6 broken one way each."""
    root = tmp_path_factory.mktemp('check_videos')
    make_synthetic_dataset(
        str(root),
        SyntheticSpec(
            num_classes=2,
            train_per_class=5,
            val_per_class=1,
            resolution=32,
            num_frames=8,
            seed=1),
        splits=('train', ))
    names = [f'train_{i:05d}.mp4' for i in range(len(BAD_KINDS))]
    bad = corrupt_videos(str(root / 'videos'), names)
    return root, bad


def read_tsv(path):
    with open(path) as f:
        return [line.split('\t') for line in f.read().splitlines()]


def test_finds_exactly_the_broken_entries(tool, dataset, tmp_path, capsys):
    root, bad = dataset
    ann = str(root / 'train_list_videos.txt')
    out, clean = str(tmp_path / 'bad.tsv'), str(tmp_path / 'clean.txt')
    code = tool.main([
        ann,
        str(root / 'videos'), '--out', out, '--clean-out', clean,
        '--frame-size', '32', '32', '--workers', '2', '--no-progress'
    ])
    assert code == 0  # not --strict
    rows = read_tsv(out)
    assert {
        path: kind
        for path, kind, _ in rows
    } == {
        name: EXPECTED_KIND[kind]
        for name, kind in bad.items()
    }
    assert all(detail for _, _, detail in rows)
    # The clean list is the original minus the bad lines, in order.
    with open(ann) as f:
        lines = f.read().splitlines()
    with open(clean) as f:
        assert f.read().splitlines() == [
            line for line in lines if line.split()[0] not in bad
        ]
    summary = capsys.readouterr().out.splitlines()[-3]
    assert summary.endswith('videos of ' + ann +
                            ': 4 ok, 6 bad (1 missing, 1 empty, '
                            '2 unreadable, 1 too-short, 1 wrong-size)')


def test_without_a_frame_size_any_consistent_size_is_fine(
        tool, dataset, tmp_path):
    root, bad = dataset
    out = str(tmp_path / 'bad.tsv')
    tool.main([
        str(root / 'train_list_videos.txt'),
        str(root / 'videos'), '--out', out, '--no-progress'
    ])
    found = {path for path, _, _ in read_tsv(out)}
    assert found == {n for n, k in bad.items() if k != 'resized'}


def test_min_frames_one_accepts_a_still(tool, dataset, tmp_path):
    root, bad = dataset
    out = str(tmp_path / 'bad.tsv')
    tool.main([
        str(root / 'train_list_videos.txt'),
        str(root / 'videos'), '--out', out, '--min-frames', '1',
        '--no-progress'
    ])
    found = {path for path, _, _ in read_tsv(out)}
    assert found == {
        n
        for n, k in bad.items() if k not in ('resized', 'one-frame')
    }


def test_command_line_exit_codes(tool, dataset, tmp_path, capsys):
    root, _ = dataset

    def run(ann, *args):
        return subprocess.run(
            [sys.executable, TOOL, ann,
             str(root / 'videos'), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120)

    ann = str(root / 'train_list_videos.txt')
    proc = run(ann, '--strict')
    assert proc.returncode == 1, proc.stderr
    assert '10 videos' in proc.stdout and '5 bad' in proc.stdout
    # The progress bar went to stderr; FFmpeg's complaints did not.
    assert 'checking videos' in proc.stderr
    assert 'moov atom' not in proc.stderr
    # Only the good entries: --strict passes.
    good = tmp_path / 'good.txt'
    with open(ann) as f:
        good.write_text(''.join(line for line in f
                                if line.split()[0] == 'train_00009.mp4'))
    # (in this process: each run of the tool imports torch, which takes
    # long on a busy machine)
    assert tool.main(
        [str(good),
         str(root / 'videos'), '--strict', '--no-progress']) == 0
    assert ': 1 ok, 0 bad' in capsys.readouterr().out


def test_decode_check_finds_what_opening_misses(tmp_path):
    # decord 0.6 opens this 64x48 (height x width) mp4 and counts its
    # frames, but fails to copy out frames 48 pixels wide: only decoding
    # finds it.
    path = str(tmp_path / 'w48.mp4')
    frames = render_video(0, np.random.default_rng(0), 64, 8)[:, :, :48]
    write_video(path, np.ascontiguousarray(frames), 12)
    assert probe_video(path, num_decode=0) is None
    problem = probe_video(path)
    assert problem is not None and problem.kind == 'decode-error'


def test_reports_which_decoders_read_each_file(tool, tmp_path, capsys):
    """Files decord cannot decode are read by PyAV and OpenCV, so they are
    not bad; a text file named .mp4 is read by none."""
    video_dir = tmp_path / 'videos'
    names = write_decord_unreadable(str(video_dir), 2, num_frames=8)
    (video_dir / 'text.mp4').write_text('not a video\n')
    write_video(
        str(video_dir / 'good.mp4'),
        np.random.default_rng(0).integers(
            0, 256, (8, 32, 32, 3), dtype=np.uint8))
    ann = tmp_path / 'list.txt'
    ann.write_text(''.join(f'{n} 0\n'
                           for n in names + ['text.mp4', 'good.mp4']))
    out, report = str(tmp_path / 'bad.tsv'), str(tmp_path / 'report.tsv')
    code = tool.main([
        str(ann),
        str(video_dir), '--out', out, '--report', report, '--no-progress',
        '--strict'
    ])
    assert code == 1
    assert [row[:2] for row in read_tsv(out)] == [['text.mp4', 'unreadable']]
    rows = read_tsv(report)
    assert rows[0] == ['path', 'decord', 'pyav', 'opencv']
    verdicts = {row[0]: row[1:] for row in rows[1:]}
    # OpenCV 4.x opens a text file as a video of no frames: too short,
    # where OpenCV 5 refuses it. Either way it is not read.
    assert verdicts.pop('text.mp4') in (['unreadable'] * 3,
                                        ['unreadable'] * 2 + ['too-short'])
    assert verdicts == {
        names[0]: ['decode-error', 'ok', 'ok'],
        names[1]: ['decode-error', 'ok', 'ok'],
        'good.mp4': ['ok'] * 3,
    }
    output = capsys.readouterr().out
    assert 'read by decord 1, pyav 3, opencv 3; 2 only by a decoder after ' \
        'decord' in output
    # One decoder only: the decord-unreadable files are bad too.
    code = tool.main([
        str(ann),
        str(video_dir), '--out', out, '--no-progress', '--decoders', 'decord'
    ])
    assert {row[0] for row in read_tsv(out)} == {*names, 'text.mp4'}
