"""The decoder fallback chain and the decode time limit of
RobustVideoDataset, on real files the tests write: videos decord 0.6 cannot
decode but PyAV and OpenCV can, files cut at several offsets, a broken mp4
index, a zero-byte file, a missing file and a text file named ``.mp4``."""
import glob
import os
import os.path as osp
import re
import time
from typing import Dict, List

import numpy as np
import pytest
import torch
from bad_videos import (DECORD_UNREADABLE, corrupt_videos,
                        write_decord_unreadable, write_video)
from mmaction.registry import DATASETS, TRANSFORMS
from mmcv.transforms import BaseTransform
from mmengine.registry import init_default_scope
from stack import gt_label

from mmaction_sttm.datasets import BadVideoError, RobustVideoDataset
from mmaction_sttm.datasets.decoders import (BUILTIN_DECODERS, DecoderChain,
                                             DecodeTimeout, call_with_timeout)

CLIP = (1, 3, 4, 32, 32)


def pipeline(decoder: str = 'decord',
             test_mode: bool = False,
             decode: str = None) -> List[dict]:
    init_type, decode_type, _ = BUILTIN_DECODERS[decoder]
    return [
        dict(type=init_type),
        dict(
            type='SampleFrames',
            clip_len=4,
            frame_interval=2,
            num_clips=1,
            test_mode=test_mode),
        dict(type=decode or decode_type),
        dict(type='Resize', scale=(32, 32), keep_ratio=False),
        dict(type='FormatShape', input_format='NCTHW'),
        dict(
            type='PackActionInputs',
            meta_keys=('img_shape', 'filename', 'decoder', 'frame_inds')),
    ]


def write_list(root: str, names: List[str], name: str = 'list.txt') -> str:
    path = osp.join(root, name)
    with open(path, 'w') as f:
        f.writelines(f'{n} {i % 2}\n' for i, n in enumerate(names))
    return path


def build(root: str, ann: str, **kwargs) -> RobustVideoDataset:
    init_default_scope('mmaction')
    cfg = dict(
        type='RobustVideoDataset',
        ann_file=ann,
        data_prefix=dict(video=root),
        pipeline=pipeline(),
        input_shape=CLIP)
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def smooth_video(seed: int,
                 height: int = 32,
                 width: int = 32,
                 frames: int = 16) -> np.ndarray:
    """Moving gradients: little enough detail that codec rounding stays
    small, and every frame differs."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:height, :width]
    phase = rng.uniform(0, 2 * np.pi, 3)
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        for c in range(3):
            out[t, ...,
                c] = 127 + 100 * np.sin((x + 2 * t) / 9 + (y / 13) + phase[c])
    return out


@pytest.fixture(scope='module')
def good(tmp_path_factory) -> str:
    """8 normal mp4v videos, 32x32, 16 frames."""
    root = str(tmp_path_factory.mktemp('good'))
    for i in range(8):
        write_video(osp.join(root, f'good_{i}.mp4'), smooth_video(i))
    return root


@pytest.fixture(scope='module')
def undecordable(tmp_path_factory) -> str:
    """8 videos of encodings that decord 0.6 fails on."""
    root = str(tmp_path_factory.mktemp('undecordable'))
    write_decord_unreadable(root, 8)
    return root


# ----------------------------------------------------------------------
# The decoders agree


def test_decoders_agree_on_normal_videos(good):
    """Same frame count (so sampling does not depend on the decoder) and
    the same frames within codec rounding."""
    init_default_scope('mmaction')
    for path in sorted(glob.glob(osp.join(good, '*.mp4'))):
        counts, frames = {}, {}
        for name, (init, decode, _) in BUILTIN_DECODERS.items():
            results = TRANSFORMS.build(dict(type=init))(dict(filename=path))
            counts[name] = results['total_frames']
            results['frame_inds'] = np.array([0, 5, 10, 15])
            frames[name] = np.stack(
                TRANSFORMS.build(dict(type=decode))(results)['imgs']).astype(
                    np.int16)
        assert set(counts.values()) == {16}, counts
        for name in ('pyav', 'opencv'):
            diff = np.abs(frames[name] - frames['decord'])
            # The same mp4v stream decoded by three FFmpeg builds: up to a
            # few levels of YUV->RGB rounding, no other frame.
            assert diff.mean() < 2 and diff.max() <= 16, (name, diff.max())


@pytest.mark.parametrize('fourcc, ext, height, width', DECORD_UNREADABLE)
def test_the_generator_makes_decord_fail(tmp_path, fourcc, ext, height, width):
    """Each encoding of DECORD_UNREADABLE: decord opens it and fails on its
    frames; PyAV and OpenCV read them, the same frames."""
    import av
    import cv2
    import decord
    path = str(tmp_path / f'v.{ext}')
    frames = smooth_video(0, height, width, 8)
    write_video(path, frames, fourcc=fourcc)
    reader = decord.VideoReader(path, num_threads=1)
    assert len(reader) == 8
    with pytest.raises(Exception, match='size must exactly match'):
        reader.get_batch([0, 3]).asnumpy()
    with av.open(path) as container:
        decoded = [f.to_rgb().to_ndarray() for f in container.decode(video=0)]
    assert len(decoded) == 8 and decoded[0].shape == (height, width, 3)
    capture = cv2.VideoCapture(path)
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    ok, frame = capture.read()
    assert ok and np.abs(frame[..., ::-1].astype(int) - decoded[0]).mean() < 2


# ----------------------------------------------------------------------
# Fallback in the dataset


def test_fallback_serves_what_decord_cannot(undecordable):
    names = sorted(
        n for n in os.listdir(undecordable) if not n.endswith('.txt'))
    ann = write_list(undecordable, names)
    only_decord = build(undecordable, ann, decoders=['decord'])
    with pytest.raises(BadVideoError, match='size must exactly match'):
        only_decord[0]
    dataset = build(undecordable, ann, on_bad_sample='replace')
    assert dataset.decoder_chain.names == ['decord', 'pyav', 'opencv']
    reference = build(
        undecordable, ann, pipeline=pipeline('pyav'), decoders=['pyav'])
    for index, name in enumerate(names):
        np.random.seed(index)
        sample = dataset[index]
        meta = sample['data_samples'].metainfo
        assert meta['filename'] == osp.join(undecordable, name)
        assert meta['decoder'] == 'pyav'
        assert gt_label(sample['data_samples']) == index % 2
        # PyAV alone, given the same random state, samples the same frames
        # from the same count and gives the same clip.
        np.random.seed(index)
        direct = reference[index]
        np.testing.assert_array_equal(meta['frame_inds'],
                                      direct['data_samples'].frame_inds)
        assert torch.equal(sample['inputs'], direct['inputs'])
    assert dataset.num_bad_samples == 0
    assert dataset.decoder_counts == {
        'decord': 0,
        'pyav': len(names),
        'opencv': 0
    }


def test_next_decoder_gets_the_same_indices(undecordable):
    """PyAV removed: OpenCV serves, from decord's count and indices."""
    names = sorted(
        n for n in os.listdir(undecordable) if not n.endswith('.txt'))
    ann = write_list(undecordable, names)
    dataset = build(
        undecordable,
        ann,
        decoders=['decord', 'opencv'],
        pipeline=pipeline(test_mode=True))
    sample = dataset[0]
    meta = sample['data_samples'].metainfo
    assert meta['decoder'] == 'opencv'
    # SampleFrames in test mode: 4 frames, every 2nd, centred in 16.
    np.testing.assert_array_equal(meta['frame_inds'], [4, 6, 8, 10])


@pytest.mark.parametrize('decoders, field', [
    (['decord', 'ffmpeg'], 'unknown decoder'),
    (['pyav', 'opencv'], 'not one of the chain'),
    ('decord', 'non-empty list'),
    ([dict(name='x', init=dict(type='DecordInit'))], 'dict\\(name='),
    (['decord', 'decord'], 'repeat'),
])
def test_invalid_chains_fail_at_build_time(good, decoders, field):
    ann = write_list(good, ['good_0.mp4'], 'one.txt')
    with pytest.raises(ValueError, match=field):
        build(good, ann, decoders=decoders)


# ----------------------------------------------------------------------
# Files no decoder reads

#: OpenCV's mp4 writer puts the frame data (mdat) first and the index
#: (moov) at the end, about half-way here: every cut loses the index, and
#: no decoder reads the file, except the last one, which loses only the end
#: of the index; all three decoders still read that one.
CUTS = ['cut-0.1', 'cut-0.5', 'cut-0.9']
TOLERATED = ['cut-0.99']


@pytest.fixture(scope='module')
def broken(tmp_path_factory) -> Dict[str, str]:
    """One file per kind of damage (the tolerated cut included), plus 4
    good files."""
    root = str(tmp_path_factory.mktemp('broken'))
    kinds = CUTS + TOLERATED + ['broken-index', 'empty', 'missing', 'text']
    names = [f'v{i}.mp4' for i in range(len(kinds) + 4)]
    for i, name in enumerate(names):
        write_video(osp.join(root, name), smooth_video(i))
    damaged = corrupt_videos(root, names, kinds=kinds)
    bad = {n: k for n, k in damaged.items() if k not in TOLERATED}
    return dict(root=root, names=names, bad=bad)


def test_no_decoder_reads_them(broken):
    root, names, bad = broken['root'], broken['names'], broken['bad']
    ann = write_list(root, names)
    dataset = build(root, ann)  # on_bad_sample='raise'
    for index, name in enumerate(names):
        if name not in bad:
            assert dataset[index]['data_samples'].metainfo[
                'decoder'] == 'decord'
            continue
        with pytest.raises(BadVideoError) as info:
            dataset[index]
        assert info.value.filename == osp.join(root, name)
        if bad[name] not in ('missing', 'empty'):
            # Every decoder of the chain was tried and is named.
            for decoder in ('decord', 'pyav', 'opencv'):
                assert f'{decoder}: ' in info.value.reason, info.value.reason


def test_test_mode_and_strict_scoring(broken):
    root, names, bad = broken['root'], broken['names'], broken['bad']
    ann = write_list(root, names)
    test_cfg = dict(
        pipeline=pipeline(test_mode=True),
        test_mode=True,
        on_bad_sample='replace')
    dataset = build(root, ann, **test_cfg)
    assert {osp.basename(f) for f, _ in dataset.excluded} == set(bad)
    assert dataset.num_scored == len(names) - len(bad)
    with pytest.raises(BadVideoError) as info:
        build(root, ann, strict_scoring=True, **test_cfg)
    message = str(info.value)
    assert f'{len(bad)} of {len(names)} videos' in message
    for name in bad:
        assert osp.join(root, name) in message


# ----------------------------------------------------------------------
# Time limit


@TRANSFORMS.register_module(force=True)
class _SlowDecordDecode(BaseTransform):
    """DecordDecode that first sleeps 30 s on files named ``*hang*``."""

    def transform(self, results: dict) -> dict:
        if 'hang' in results['filename']:
            time.sleep(30)
        return TRANSFORMS.build(dict(type='DecordDecode'))(results)


SLOW = dict(
    name='slow-decord',
    init=dict(type='DecordInit'),
    decode=dict(type='_SlowDecordDecode'))


@pytest.fixture(scope='module')
def hanging(good) -> str:
    os.link(osp.join(good, 'good_0.mp4'), osp.join(good, 'hang.mp4'))
    return write_list(good,
                      ['hang.mp4'] + [f'good_{i}.mp4' for i in range(1, 8)],
                      'hang.txt')


def test_call_with_timeout():
    assert call_with_timeout(lambda: 3, 1.0) == 3
    with pytest.raises(KeyError):
        call_with_timeout(lambda: {}['x'], 1.0)
    start = time.monotonic()
    with pytest.raises(DecodeTimeout):
        call_with_timeout(lambda: time.sleep(5), 0.2)
    assert time.monotonic() - start < 1


def test_a_hanging_decoder_is_cut_off(good, hanging):
    slow = pipeline(decode='_SlowDecordDecode')
    dataset = build(
        good, hanging, pipeline=slow, decoders=[SLOW], decode_timeout=0.5)
    start = time.monotonic()
    with pytest.raises(BadVideoError) as info:
        dataset[0]
    took = time.monotonic() - start
    # The stub sleeps 30 s; the limit ends the wait after 0.5 s (the bound
    # leaves room for a busy machine).
    assert took < 10
    assert info.value.filename == osp.join(good, 'hang.mp4')
    assert re.search(r'gave up after \d+\.\d s \(decode_timeout=0.5 s',
                     str(info.value))
    # With a fallback, the next decoder serves it.
    dataset = build(
        good,
        hanging,
        pipeline=slow,
        decoders=[SLOW, 'pyav'],
        decode_timeout=0.5)
    assert dataset[0]['data_samples'].metainfo['decoder'] == 'pyav'


@pytest.mark.parametrize('persistent', [False, True])
def test_time_limit_in_dataloader_workers(good, hanging, persistent):
    """In a worker process, training with 'replace': the hanging file is
    replaced after the limit, counted, and the epoch completes; twice with
    persistent workers, the counts add up over epochs."""
    slow = pipeline(decode='_SlowDecordDecode')
    dataset = build(
        good,
        hanging,
        pipeline=slow,
        decoders=[SLOW],
        decode_timeout=0.5,
        on_bad_sample='replace')
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=4,
        num_workers=1,
        persistent_workers=persistent,
        collate_fn=lambda batch: batch,
        multiprocessing_context='fork')
    epochs = 2 if persistent else 1
    start = time.monotonic()
    for _ in range(epochs):
        seen = [
            s['data_samples'].metainfo['filename'] for batch in loader
            for s in batch
        ]
        assert len(seen) == 8
        assert osp.join(good, 'hang.mp4') not in seen
    # Without the limit one epoch alone would take the stub's 30 s.
    assert time.monotonic() - start < 25
    # Once per epoch, plus each time a random replacement drew it again.
    assert dataset.num_bad_samples >= epochs
    assert dataset.decoder_counts['slow-decord'] == 8 * epochs


def test_decoder_chain_on_a_pipeline_without_video():
    """A raw-frame pipeline has nothing to fall back on; naming decoders
    for it is an error."""
    transforms = [TRANSFORMS.build(dict(type='RawFrameDecode'))]
    assert not DecoderChain(None, transforms)
    with pytest.raises(ValueError, match='no open and decode'):
        DecoderChain(['decord', 'pyav'], transforms)


def test_decoder_chain_decodes_on_its_own():
    """The fallback is the chain's, without a dataset: the first decoder
    that opens the video gives the count, the indices are drawn once, a
    decoder that fails the frame check is passed over, and when none reads
    the video every try is named."""
    from mmaction_sttm.datasets.decoders import DecodeFailed, Decoder
    init_default_scope('mmaction')
    chain = DecoderChain(
        None, [
            TRANSFORMS.build(dict(type='DecordInit')),
            TRANSFORMS.build(dict(type='DecordDecode'))
        ],
        min_frames=2)
    calls = []

    def opener(total):

        def init(results):
            calls.append(('open', total))
            if total is None:
                raise OSError('cannot open')
            return dict(results, total_frames=total)

        return init

    def decoder(value):

        def decode(results):
            calls.append(('decode', value))
            inds = results['frame_inds']
            return dict(results, imgs=[np.full((2, 2, 3), value)] * len(inds))

        return decode

    chain.decoders = [
        Decoder('a', opener(None), decoder(0)),
        Decoder('b', opener(1), decoder(1)),
        Decoder('c', opener(10), decoder(2)),
        Decoder('d', opener(10), decoder(3))
    ]
    drawn = []

    def sample(results):
        drawn.append(results['total_frames'])
        return dict(results, frame_inds=np.arange(4))

    out = chain.decode(
        dict(filename='v.mp4'),
        sample,
        check=lambda r: 'dark' if r['imgs'][0].max() == 2 else None)
    assert out['decoder'] == 'd' and out['imgs'][0].max() == 3
    assert drawn == [10]  # once, from the first decoder that opened it
    assert calls == [('open', None), ('open', 1), ('open', 10), ('decode', 2),
                     ('open', 10), ('decode', 3)]
    assert chain.decode(
        dict(filename='v.mp4'), lambda r: None, check=lambda r: None) is None
    chain.decoders = chain.decoders[:2]
    with pytest.raises(DecodeFailed) as err:
        chain.decode(dict(filename='v.mp4'), sample, check=lambda r: None)
    assert err.value.failures == [
        'a: function failed: OSError: cannot open',
        'b: counts 1 frame(s), fewer than min_frames=2'
    ]
    assert str(err.value).startswith('no decoder reads it (a: ')
