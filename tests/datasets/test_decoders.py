"""The decoder fallback and the decode time limit of the DecodeWithFallback
pipeline transform, alone and in RobustVideoDataset, on real files the tests
write: videos decord 0.6 cannot decode but PyAV and OpenCV can, files cut at
several offsets, a broken mp4 index, a zero-byte file, a missing file and a
text file named ``.mp4``."""
import glob
import os
import os.path as osp
import re
import time
from typing import Dict, List, Optional

import numpy as np
import pytest
import torch
from bad_videos import (DECORD_UNREADABLE, corrupt_videos,
                        write_decord_unreadable, write_video)
from mmaction.registry import DATASETS, TRANSFORMS
from mmcv.transforms import BaseTransform
from mmengine.config import Config
from mmengine.registry import init_default_scope
from stack import gt_label

from mmaction_sttm.datasets import (BadVideoError, DecodeWithFallback,
                                    RobustVideoDataset, pipeline_steps)
from mmaction_sttm.datasets.decoders import (BUILTIN_DECODERS, DecodeFailed,
                                             Decoder, DecoderChain,
                                             DecodeTimeout, call_with_timeout,
                                             find_pipeline_decoder)

CLIP = (1, 3, 4, 32, 32)
ALL = ['decord', 'pyav', 'opencv']


def sampler(test_mode: bool = False) -> dict:
    return dict(
        type='SampleFrames',
        clip_len=4,
        frame_interval=2,
        num_clips=1,
        test_mode=test_mode)


def after_decoding() -> List[dict]:
    return [
        dict(type='Resize', scale=(32, 32), keep_ratio=False),
        dict(type='FormatShape', input_format='NCTHW'),
        dict(
            type='PackActionInputs',
            meta_keys=('img_shape', 'filename', 'decoder', 'frame_inds')),
    ]


def pipeline(decoder: str = 'decord',
             test_mode: bool = False,
             decode: Optional[str] = None) -> List[dict]:
    """MMAction2's plain open / sample / decode steps: no fallback."""
    init_type, decode_type, _ = BUILTIN_DECODERS[decoder]
    return [
        dict(type=init_type),
        sampler(test_mode),
        dict(type=decode or decode_type),
    ] + after_decoding()


def fallback(decoders: Optional[list] = None,
             test_mode: bool = False,
             **kwargs) -> List[dict]:
    """The same pipeline with DecodeWithFallback in place of the three."""
    step = dict(type='DecodeWithFallback', sampler=sampler(test_mode))
    step.update(kwargs)
    if decoders is not None:
        step['decoders'] = decoders
    return [step] + after_decoding()


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
        pipeline=fallback(),
        input_shape=CLIP)
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def build_transform(**kwargs) -> DecodeWithFallback:
    """DecodeWithFallback from its config dict, through MMAction2's
    registry."""
    init_default_scope('mmaction')
    cfg = dict(type='DecodeWithFallback', sampler=sampler(True))
    cfg.update(kwargs)
    return TRANSFORMS.build(cfg)


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


def undecordable_names(root: str) -> List[str]:
    return sorted(n for n in os.listdir(root) if not n.endswith('.txt'))


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
# The transform alone


def test_transform_builds_from_its_config_dict():
    transform = build_transform(
        decoders=ALL, timeout=60, io_backend='disk', frame_size=(32, 32))
    assert isinstance(transform, DecodeWithFallback)
    assert transform.decoder_names == ALL
    assert transform.timeout == 60 and transform.min_frames == 2
    assert transform.decoder_counts == {'decord': 0, 'pyav': 0, 'opencv': 0}
    # The built-in decoders are MMAction2's transforms, with the backend.
    init, decode = transform.chain.decoders[1].init, \
        transform.chain.decoders[1].decode
    assert (type(init).__name__, type(decode).__name__) == ('PyAVInit',
                                                            'PyAVDecode')
    assert init.io_backend == 'disk'
    assert 'SampleFrames' in repr(transform) and 'pyav' in repr(transform)
    # None: the installed defaults, in order.
    assert build_transform().decoder_names == ALL


def test_transform_gives_what_mmaction2_gives(good):
    """On a video decord reads: the same results, byte for byte, as
    MMAction2's DecordInit / SampleFrames / DecordDecode with the same
    random state, plus the decoder's name."""
    transform = build_transform(decoders=ALL, timeout=60)
    train = TRANSFORMS.build(
        dict(type='DecodeWithFallback', sampler=sampler(), decoders=ALL))
    plain = [TRANSFORMS.build(step) for step in pipeline()[:3]]
    for name in ('good_0.mp4', 'good_5.mp4'):
        for step in (transform, train):
            mode = step.sampler.test_mode
            np.random.seed(3)
            ours = step(dict(filename=osp.join(good, name), start_index=0))
            np.random.seed(3)
            theirs = dict(filename=osp.join(good, name), start_index=0)
            plain[1].test_mode = mode
            for t in plain:
                theirs = t(theirs)
            assert ours.pop('decoder') == 'decord'
            assert set(ours) == set(theirs)
            np.testing.assert_array_equal(ours['frame_inds'],
                                          theirs['frame_inds'])
            assert np.array_equal(
                np.stack(ours['imgs']), np.stack(theirs['imgs']))
            assert ours['total_frames'] == theirs['total_frames'] == 16
    assert transform.decoder_counts['decord'] == 2


def test_transform_falls_back(undecordable):
    transform = build_transform(decoders=ALL)
    reference = [TRANSFORMS.build(step) for step in pipeline('pyav', True)[:3]]
    for name in undecordable_names(undecordable)[:4]:
        path = osp.join(undecordable, name)
        out = transform(dict(filename=path, start_index=0))
        assert out['decoder'] == 'pyav'
        direct = dict(filename=path, start_index=0)
        for step in reference:
            direct = step(direct)
        np.testing.assert_array_equal(out['frame_inds'], direct['frame_inds'])
        assert np.array_equal(np.stack(out['imgs']), np.stack(direct['imgs']))
    assert transform.decoder_counts == {'decord': 0, 'pyav': 4, 'opencv': 0}
    # decord alone: the decoder's own error, in one line.
    alone = build_transform(decoders=['decord'])
    with pytest.raises(DecodeFailed, match='size must exactly match') as info:
        alone(dict(filename=path, start_index=0))
    assert '\n' not in str(info.value)


def test_transform_raises_a_one_line_reason(tmp_path):
    path = str(tmp_path / 'text.mp4')
    with open(path, 'w') as f:
        f.write('404 Not Found\n' * 20)
    transform = build_transform(decoders=ALL)
    with pytest.raises(DecodeFailed) as info:
        transform(dict(filename=path, start_index=0))
    message = str(info.value)
    assert message.startswith('no decoder reads it (decord: DecordInit ')
    assert '\n' not in message
    for name in ALL:
        assert f'{name}: ' in message
    assert [f.split(':')[0] for f in info.value.failures] == ALL
    assert transform.decoder_counts == {'decord': 0, 'pyav': 0, 'opencv': 0}


def test_transform_checks_the_frames(good):
    """Frames of another size than frame_size: every decoder fails the
    check, and the reason says so for each."""
    transform = build_transform(
        decoders=['decord', 'pyav'], frame_size=(48, 48))
    with pytest.raises(DecodeFailed) as info:
        transform(dict(filename=osp.join(good, 'good_0.mp4'), start_index=0))
    assert info.value.failures == [
        f'{name}: wrong-size: its frames are 32x32 (height x width), '
        'expected 48x48' for name in ('decord', 'pyav')
    ]


@pytest.mark.parametrize('kwargs, field', [
    (dict(decoders=['decord', 'ffmpeg']), 'unknown decoder'),
    (dict(decoders='decord'), 'non-empty list'),
    (dict(decoders=[]), 'non-empty list'),
    (dict(decoders=[dict(name='x', init=dict(type='DecordInit'))]),
     'dict\\(name='),
    (dict(decoders=['decord', 'decord']), 'repeat'),
    (dict(timeout=0), 'timeout must be a positive number'),
    (dict(timeout='60'), 'timeout must be a positive number'),
    (dict(min_frames=0), 'min_frames'),
    (dict(frame_size=(32, )), 'frame_size'),
    (dict(sampler=3), 'sampler must be'),
])
def test_invalid_arguments_fail_at_build_time(good, kwargs, field):
    with pytest.raises(ValueError, match=field):
        build_transform(**kwargs)
    # Through the dataset too: its pipeline is built with it.
    ann = write_list(good, ['good_0.mp4'], 'one.txt')
    with pytest.raises(ValueError, match=field):
        build(good, ann, pipeline=fallback(**kwargs))


def test_pipeline_steps_find_the_sampler():
    """Code that looks for the sampler by type finds it inside
    DecodeWithFallback; the dicts are the config's own."""
    steps = fallback(test_mode=True)
    found = [s for s in pipeline_steps(steps) if s['type'] == 'SampleFrames']
    assert found == [steps[0]['sampler']] and found[0] is steps[0]['sampler']
    assert [s['type'] for s in pipeline_steps(pipeline())] == \
        [s['type'] for s in pipeline()]
    assert [s['type'] for s in pipeline_steps(steps)][:2] == \
        ['DecodeWithFallback', 'SampleFrames']


# ----------------------------------------------------------------------
# Fallback in the dataset


def test_fallback_serves_what_decord_cannot(undecordable):
    names = undecordable_names(undecordable)
    ann = write_list(undecordable, names)
    # MMAction2's plain pipeline, and the transform with decord alone: no
    # fallback.
    for only_decord in (pipeline(), fallback(['decord'])):
        dataset = build(undecordable, ann, pipeline=only_decord)
        with pytest.raises(BadVideoError, match='size must exactly match'):
            dataset[0]
    dataset = build(undecordable, ann, on_bad_sample='replace')
    assert dataset.decoder_names == ALL
    reference = build(undecordable, ann, pipeline=pipeline('pyav'))
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
    # A plain pipeline counts nothing (BadSampleHook then reports nothing).
    assert reference.decoder_counts == {} and reference.decoder_names == []


def test_next_decoder_gets_the_same_indices(undecordable):
    """PyAV left out: OpenCV serves, from decord's count and indices."""
    names = undecordable_names(undecordable)
    ann = write_list(undecordable, names)
    dataset = build(
        undecordable,
        ann,
        pipeline=fallback(['decord', 'opencv'], test_mode=True))
    sample = dataset[0]
    meta = sample['data_samples'].metainfo
    assert meta['decoder'] == 'opencv'
    # SampleFrames in test mode: 4 frames, every 2nd, centred in 16.
    np.testing.assert_array_equal(meta['frame_inds'], [4, 6, 8, 10])


@pytest.mark.parametrize('moved, where', [
    (dict(decoders=['decord', 'pyav']), 'decoders='),
    (dict(decode_timeout=60), 'decode_timeout='),
    (dict(decoders=None,
          decode_timeout=None), 'decoders= and decode_timeout='),
])
def test_removed_dataset_arguments_say_where_they_went(good, moved, where):
    ann = write_list(good, ['good_0.mp4'], 'one.txt')
    with pytest.raises(ValueError) as info:
        build(good, ann, pipeline=pipeline(), **moved)
    message = str(info.value)
    assert '\n' not in message
    assert f'RobustVideoDataset: {where} moved to the pipeline: use ' \
        "dict(type='DecodeWithFallback', " in message
    assert "sampler=dict(type='SampleFrames', ...))" in message
    # The same from a config file, as a zoo config of before would say.
    cfg = Config(
        dict(
            dataset=dict(
                type='RobustVideoDataset',
                ann_file=ann,
                data_prefix=dict(video=good),
                pipeline=fallback(),
                **moved)))
    with pytest.raises(ValueError, match=f'{where} moved to the pipeline'):
        DATASETS.build(cfg.dataset)


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
    plain = build(root, ann, pipeline=pipeline())
    for index, name in enumerate(names):
        if name not in bad:
            assert dataset[index]['data_samples'].metainfo[
                'decoder'] == 'decord'
            continue
        with pytest.raises(BadVideoError) as info:
            dataset[index]
        assert info.value.filename == osp.join(root, name)
        assert '\n' not in str(info.value)
        if bad[name] not in ('missing', 'empty'):
            # Every decoder was tried and is named.
            assert info.value.reason.startswith('no decoder reads it (')
            for decoder in ALL:
                assert f'{decoder}: ' in info.value.reason, info.value.reason
        # MMAction2's plain pipeline: decord's error, naming the file too.
        with pytest.raises(BadVideoError) as info:
            plain[index]
        assert info.value.filename == osp.join(root, name)
        assert 'pyav' not in info.value.reason
    assert dataset.decoder_counts['decord'] == len(names) - len(bad)


@pytest.mark.parametrize('plain', [False, True])
def test_test_mode_and_strict_scoring(broken, plain):
    """The load-time check uses the pipeline's decoders: the fallback's, or
    the plain pipeline's own (decord); these files fail both."""
    root, names, bad = broken['root'], broken['names'], broken['bad']
    ann = write_list(root, names)
    test_cfg = dict(
        pipeline=pipeline(test_mode=True) if plain else fallback(
            test_mode=True),
        test_mode=True,
        on_bad_sample='replace')
    dataset = build(root, ann, **test_cfg)
    assert {osp.basename(f) for f, _ in dataset.excluded} == set(bad)
    assert dataset.num_scored == len(names) - len(bad)
    text = next(name for name, kind in bad.items() if kind == 'text')
    text = dict(dataset.excluded)[osp.join(root, text)]
    if plain:
        assert text.startswith('unreadable: decord cannot open it')
    else:
        assert text.startswith('unreadable: no decoder reads it: decord '
                               'cannot open it')
        assert 'pyav cannot open it' in text
    with pytest.raises(BadVideoError) as info:
        build(root, ann, strict_scoring=True, **test_cfg)
    message = str(info.value)
    assert f'{len(bad)} of {len(names)} videos' in message
    for name in bad:
        assert osp.join(root, name) in message


def test_precheck_uses_the_pipelines_decoders(undecordable):
    """test_precheck='decode' on files decord opens but cannot decode: the
    plain decord pipeline excludes them all (which is an error), the
    fallback none."""
    names = undecordable_names(undecordable)
    ann = write_list(undecordable, names)
    cfg = dict(test_mode=True, on_bad_sample='replace', test_precheck='decode')
    with pytest.raises(BadVideoError) as info:
        build(undecordable, ann, pipeline=pipeline(test_mode=True), **cfg)
    assert re.search(
        f'None of the {len(names)} videos .* decode-error: decord fails on '
        'frames .*size must exactly match', str(info.value))
    with_fallback = build(
        undecordable, ann, pipeline=fallback(test_mode=True), **cfg)
    assert with_fallback.excluded == []
    assert with_fallback.num_scored == len(names)


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
    dataset = build(good, hanging, pipeline=fallback([SLOW], timeout=0.5))
    start = time.monotonic()
    with pytest.raises(BadVideoError) as info:
        dataset[0]
    took = time.monotonic() - start
    # The stub sleeps 30 s; the limit ends the wait after 0.5 s (the bound
    # leaves room for a busy machine).
    assert took < 10
    assert info.value.filename == osp.join(good, 'hang.mp4')
    assert re.search(r'gave up after \d+\.\d s \(timeout=0.5 s',
                     str(info.value))
    # With a fallback, the next decoder serves it.
    dataset = build(
        good, hanging, pipeline=fallback([SLOW, 'pyav'], timeout=0.5))
    assert dataset[0]['data_samples'].metainfo['decoder'] == 'pyav'


@pytest.mark.parametrize('persistent', [False, True])
def test_time_limit_in_dataloader_workers(good, hanging, persistent):
    """In a worker process, training with 'replace': the hanging file is
    replaced after the limit, counted, and the epoch completes; twice with
    persistent workers, the counts add up over epochs."""
    dataset = build(
        good,
        hanging,
        pipeline=fallback([SLOW], timeout=0.5),
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
    # Counted by the transform in the worker, read here through the
    # dataset.
    assert dataset.decoder_counts == {'slow-decord': 8 * epochs}


# ----------------------------------------------------------------------
# The chain without a pipeline


def test_pipeline_decoder_of_a_plain_pipeline():
    """The precheck's decoder of a plain pipeline: its own transform
    instances; none for raw frames or a DecodeWithFallback pipeline."""
    init_default_scope('mmaction')
    transforms = [TRANSFORMS.build(step) for step in pipeline('pyav')]
    own = find_pipeline_decoder(transforms)
    assert own.name == 'pyav'
    assert own.init is transforms[0] and own.decode is transforms[2]
    raw = [TRANSFORMS.build(dict(type='RawFrameDecode'))]
    assert find_pipeline_decoder(raw) is None
    assert find_pipeline_decoder(
        [TRANSFORMS.build(step) for step in fallback()]) is None


def test_decoder_chain_builds_from_a_list():
    init_default_scope('mmaction')
    chain = DecoderChain(['opencv', 'pyav'], io_backend='disk', timeout=5)
    assert chain.names == ['opencv', 'pyav'] and chain.timeout == 5
    assert [type(d.init).__name__
            for d in chain.decoders] == ['OpenCVInit', 'PyAVInit']
    assert DecoderChain().names == ALL


def test_decoder_chain_decodes_on_its_own():
    """The fallback is the chain's: the first decoder that opens the video
    gives the count, the indices are drawn once, a decoder that fails the
    frame check is passed over, and when none reads the video every try is
    named."""
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

    stubs = [
        Decoder('a', opener(None), decoder(0)),
        Decoder('b', opener(1), decoder(1)),
        Decoder('c', opener(10), decoder(2)),
        Decoder('d', opener(10), decoder(3))
    ]
    chain = DecoderChain(stubs, min_frames=2)
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
    chain = DecoderChain(stubs[:2], min_frames=2)
    with pytest.raises(DecodeFailed) as err:
        chain.decode(dict(filename='v.mp4'), sample, check=lambda r: None)
    assert err.value.failures == [
        'a: function failed: OSError: cannot open',
        'b: counts 1 frame(s), fewer than min_frames=2'
    ]
    assert str(err.value).startswith('no decoder reads it (a: ')
