"""RobustVideoDataset and BadSampleHook on real files broken by the test:
a missing file, an empty one, one cut in half, one of random bytes, a 1-frame
video and one of another resolution, trained on and tested with MMEngine's
Runner; with MMAction2's plain DecordInit / SampleFrames / DecordDecode
pipeline and with DecodeWithFallback in their place."""
import glob
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest
from bad_videos import BAD_KINDS, corrupt_videos, write_decord_unreadable
from mmaction.registry import DATASETS, HOOKS
from mmengine.hooks import Hook
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from stack import gt_label

from mmaction_sttm.datasets import BadVideoError, RobustVideoDataset
from mmaction_sttm.generators import SyntheticSpec, make_synthetic_dataset

# 16 training videos of 32 px, 16 frames; the first 6 are broken, one way
# each, so the good ones stay a clear majority (a replacement is drawn at
# random and must find a good one within max_refetch tries).
SPEC = SyntheticSpec(
    num_classes=2,
    train_per_class=8,
    val_per_class=1,
    resolution=32,
    num_frames=16,
    seed=0)
CLIP = (1, 3, 4, 32, 32)  # one NCTHW clip of 4 frames at 32 px

PIPELINE = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 32)),
    dict(type='CenterCrop', crop_size=32),
    dict(type='FormatShape', input_format='NCTHW'),
    # The file name travels with the sample, so that what the model sees
    # can be checked against the annotation list.
    dict(type='PackActionInputs', meta_keys=('img_shape', 'filename')),
]
TEST_PIPELINE = [
    dict(PIPELINE[1], test_mode=True) if i == 1 else step
    for i, step in enumerate(PIPELINE)
]


def with_fallback(pipeline: List[dict], **kwargs) -> List[dict]:
    """``pipeline`` with DecodeWithFallback (decord, PyAV, OpenCV) in place
    of its DecordInit, sampler and DecordDecode."""
    decode = dict(
        type='DecodeWithFallback',
        decoders=['decord', 'pyav', 'opencv'],
        sampler=pipeline[1],
        **kwargs)
    return [decode] + pipeline[3:]


class Corrupted:
    """Paths and annotations of the corrupted dataset."""

    def __init__(self, root: str, bad: Dict[str, str]) -> None:
        self.root = root
        self.video_dir = osp.join(root, 'videos')
        self.ann_file = osp.join(root, 'train_list_videos.txt')
        self.bad = {osp.join(self.video_dir, n): k for n, k in bad.items()}
        with open(self.ann_file) as f:
            pairs = [line.split() for line in f if line.strip()]
        self.labels = {
            osp.join(self.video_dir, name): int(label)
            for name, label in pairs
        }

    def dataset_cfg(self, **kwargs) -> dict:
        cfg = dict(
            type='RobustVideoDataset',
            ann_file=self.ann_file,
            data_prefix=dict(video=self.video_dir),
            pipeline=PIPELINE,
            # The sixth broken video decodes fine, at 48x64: a size check
            # is what makes it bad.
            frame_size=(32, 32),
            input_shape=CLIP)
        cfg.update(kwargs)
        return cfg


@pytest.fixture(scope='module')
def corrupted(tmp_path_factory) -> Corrupted:
    root = str(tmp_path_factory.mktemp('corrupted'))
    make_synthetic_dataset(root, SPEC)
    names = [f'train_{i:05d}.mp4' for i in range(len(BAD_KINDS))]
    bad = corrupt_videos(osp.join(root, 'videos'), names)
    assert sorted(bad.values()) == sorted(BAD_KINDS)
    return Corrupted(root, bad)


def build(cfg: dict) -> RobustVideoDataset:
    init_default_scope('mmaction')
    return DATASETS.build(cfg)


def annotations(dataset: RobustVideoDataset) -> List[dict]:
    # data_list itself is empty: MMEngine serialises it for the workers.
    return [dataset.get_data_info(i) for i in range(len(dataset))]


# ----------------------------------------------------------------------
# The dataset alone


@pytest.mark.parametrize('fallback', [False, True])
@pytest.mark.parametrize('kind', BAD_KINDS)
def test_raise_names_the_file(corrupted, kind, fallback):
    pipeline = with_fallback(PIPELINE) if fallback else PIPELINE
    # on_bad_sample='raise'
    dataset = build(corrupted.dataset_cfg(pipeline=pipeline))
    filename = next(f for f, k in corrupted.bad.items() if k == kind)
    index = [info['filename'] for info in annotations(dataset)].index(filename)
    with pytest.raises(BadVideoError) as info:
        dataset[index]
    assert info.value.filename == filename
    assert filename in str(info.value)
    assert f'label {corrupted.labels[filename]}' in str(info.value)
    assert '\n' not in str(info.value)
    if fallback and kind in ('truncated', 'garbage'):
        # Every decoder was tried, and is named.
        for name in ('decord', 'pyav', 'opencv'):
            assert f'{name}: ' in info.value.reason
    assert dataset.num_bad_samples == 0


@pytest.mark.parametrize('fallback', [False, True])
def test_replace_keeps_each_samples_own_label(corrupted, fallback):
    pipeline = with_fallback(PIPELINE) if fallback else PIPELINE
    dataset = build(
        corrupted.dataset_cfg(pipeline=pipeline, on_bad_sample='replace'))
    np.random.seed(0)
    for index, info in enumerate(annotations(dataset)):
        sample = dataset[index]
        seen = sample['data_samples'].metainfo['filename']
        assert tuple(sample['inputs'].shape) == CLIP
        assert seen not in corrupted.bad
        # Whatever was returned carries the label of its own file.
        assert gt_label(sample['data_samples']) == \
            corrupted.labels[seen]
        if info['filename'] not in corrupted.bad:
            assert seen == info['filename']
    # Every broken file was asked for once, and possibly drawn again as a
    # replacement.
    assert dataset.num_bad_samples >= len(BAD_KINDS)


def test_input_shape_guards_collation(corrupted):
    # Without a crop, the 48x64 video gives a 32x43 clip that cannot be
    # stacked with the others; input_shape catches it (frame_size is off).
    no_crop = [s for s in PIPELINE if s['type'] != 'CenterCrop']
    dataset = build(corrupted.dataset_cfg(pipeline=no_crop, frame_size=None))
    resized = next(f for f, k in corrupted.bad.items() if k == 'resized')
    index = [info['filename'] for info in annotations(dataset)].index(resized)
    with pytest.raises(BadVideoError, match=r"shape \(1, 3, 4, 32, 43\)"):
        dataset[index]


def test_pipeline_bug_fails_fast(corrupted):
    # A pipeline that fails on every video is not "bad data": after
    # max_refetch replacements in a row the run stops with the reason.
    broken = [dict(type='DecordInit'), dict(type='DecordDecode')]
    dataset = build(
        corrupted.dataset_cfg(
            pipeline=broken, on_bad_sample='replace', max_refetch=3))
    with pytest.raises(BadVideoError, match='4 bad samples in a row'):
        dataset[len(BAD_KINDS)]
    assert dataset.num_bad_samples == 4


@pytest.mark.parametrize('fallback', [False, True])
def test_test_mode_excludes_and_names(corrupted, fallback):
    pipeline = with_fallback(TEST_PIPELINE) if fallback else TEST_PIPELINE
    dataset = build(
        corrupted.dataset_cfg(
            pipeline=pipeline, test_mode=True, on_bad_sample='replace'))
    assert dataset.num_listed == len(corrupted.labels)
    assert dataset.num_scored == len(corrupted.labels) - len(BAD_KINDS)
    excluded = dict(dataset.excluded)
    assert set(excluded) == set(corrupted.bad)
    for filename, kind in corrupted.bad.items():
        expected = {
            'missing': 'missing',
            'empty': 'empty',
            'truncated': 'unreadable',
            'garbage': 'unreadable',
            'one-frame': 'too-short',
            'resized': 'wrong-size'
        }[kind]
        assert excluded[filename].startswith(expected)
    kept = {info['filename'] for info in annotations(dataset)}
    assert not kept & set(corrupted.bad)
    # Labels of the kept videos are untouched.
    for info in annotations(dataset):
        assert info['label'] == corrupted.labels[info['filename']]


def test_test_mode_raise_keeps_everything(corrupted):
    dataset = build(
        corrupted.dataset_cfg(pipeline=TEST_PIPELINE, test_mode=True))
    assert len(dataset) == dataset.num_listed == len(corrupted.labels)
    assert dataset.excluded == []


@pytest.mark.parametrize('kwargs, field', [
    (dict(on_bad_sample='skip'), 'on_bad_sample'),
    (dict(min_frames=0), 'min_frames'),
    (dict(frame_size=(32, )), 'frame_size'),
    (dict(test_precheck='full'), 'test_precheck'),
    (dict(max_refetch=-1), 'max_refetch'),
    (dict(decoders=['decord']), 'decoders= moved to the pipeline'),
    (dict(decode_timeout=60), 'decode_timeout= moved to the pipeline'),
])
def test_invalid_options_are_named(corrupted, kwargs, field):
    with pytest.raises(ValueError, match=field):
        build(corrupted.dataset_cfg(**kwargs))


# ----------------------------------------------------------------------
# Real training and testing with MMEngine's Runner

SEEN: List[Tuple[str, int]] = []


@HOOKS.register_module(force=True)
class _RecordSeenSamplesHook(Hook):
    """Records ``(filename, label)`` of every sample the model trains on."""

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        for sample in data_batch['data_samples']:
            SEEN.append((sample.metainfo['filename'], gt_label(sample)))


def tiny_runner(work_dir: str,
                name: str,
                dataset: dict,
                num_workers: int,
                test: bool = False,
                hook: Optional[dict] = None) -> Runner:
    """SpaceTimeViT (32 channels, 2 blocks, 8 px patches) on 4x32x32 clips,
    one epoch."""
    loader = dict(
        # MMAction2's AccMetric wants one test sample per batch.
        batch_size=1 if test else 2,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        sampler=dict(type='DefaultSampler', shuffle=not test),
        dataset=dataset)
    model = dict(
        type='Recognizer3D',
        backbone=dict(
            type='SpaceTimeViT',
            img_size=32,
            patch_size=8,
            num_frames=4,
            embed_dims=32,
            depth=2,
            num_heads=2),
        cls_head=dict(
            type='TimeSformerHead',
            num_classes=2,
            in_channels=32,
            average_clips='prob'),
        data_preprocessor=dict(
            type='ActionDataPreprocessor', format_shape='NCTHW'))
    phase = dict(
        test_dataloader=loader,
        test_cfg=dict(type='TestLoop'),
        test_evaluator=dict(type='AccMetric')) if test else dict(
            train_dataloader=loader,
            train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=1),
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)))
    return Runner(
        model=model,
        work_dir=work_dir,
        # Unique: MMEngine keeps one logger (and log file) per name.
        experiment_name=name,
        default_scope='mmaction',
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=100)),
        custom_hooks=[
            hook or dict(type='BadSampleHook'),
            dict(type='_RecordSeenSamplesHook')
        ],
        env_cfg=dict(mp_cfg=dict(mp_start_method='fork')),
        randomness=dict(seed=0),
        **phase)


def read_log(runner: Runner) -> str:
    (path, ) = glob.glob(osp.join(runner.log_dir, '*.log'))
    with open(path) as f:
        return f.read()


@pytest.mark.parametrize('num_workers', [0, 1])
def test_training_survives_bad_videos(corrupted, tmp_path, num_workers):
    SEEN.clear()
    runner = tiny_runner(
        str(tmp_path), f'robust_train_w{num_workers}',
        corrupted.dataset_cfg(on_bad_sample='replace'), num_workers)
    runner.train()
    assert runner.epoch == 1
    dataset = runner.train_dataloader.dataset
    count = dataset.num_bad_samples

    # The model saw a full epoch of good samples, each with its own label.
    assert len(SEEN) == len(corrupted.labels)
    for filename, label in SEEN:
        assert filename not in corrupted.bad
        assert label == corrupted.labels[filename]

    # Every replacement is logged with its file (by the worker process when
    # there is one) and recorded in the run's bad_samples.txt; every broken
    # file was met, as the sampler asks for each index once per epoch.
    log = read_log(runner)
    logged = re.findall(
        r'Bad video (\S+) \(label \d+\): .* \(bad sample \d+ of', log)
    assert len(logged) == count >= len(BAD_KINDS)
    assert set(logged) == set(corrupted.bad)
    with open(osp.join(runner.log_dir, 'bad_samples.txt')) as f:
        recorded = [line.split('\t') for line in f.read().splitlines()]
    assert len(recorded) == count
    for filename, label, _ in recorded:
        assert int(label) == corrupted.labels[filename]
    # The hook reports the epoch's count; a plain MMAction2 pipeline has no
    # fallback, so there are no decoder counts to report.
    assert f'Epoch 1: {count} bad training sample(s) replaced' in log
    assert 'samples served per decoder' not in log


def test_training_without_the_option_names_the_file(corrupted, tmp_path):
    runner = tiny_runner(
        str(tmp_path), 'robust_train_raise', corrupted.dataset_cfg(), 0)
    with pytest.raises(BadVideoError) as info:
        runner.train()
    assert info.value.filename in corrupted.bad
    assert info.value.filename in str(info.value)


def test_too_many_bad_samples_stop_training(corrupted, tmp_path):
    # 6 of 16 videos are bad: over a 10% budget, the epoch ends in an error.
    runner = tiny_runner(
        str(tmp_path),
        'robust_train_budget',
        corrupted.dataset_cfg(on_bad_sample='replace'),
        0,
        hook=dict(type='BadSampleHook', max_bad_fraction=0.1))
    with pytest.raises(RuntimeError, match='max_bad_fraction=0.1'):
        runner.train()


def test_testing_scores_only_good_videos(corrupted, tmp_path):
    runner = tiny_runner(
        str(tmp_path),
        'robust_test',
        corrupted.dataset_cfg(
            pipeline=TEST_PIPELINE, test_mode=True, on_bad_sample='replace'),
        num_workers=0,
        test=True)
    runner.test()
    log = read_log(runner)
    total = len(corrupted.labels)
    scored = total - len(BAD_KINDS)
    for filename in corrupted.bad:
        assert f'excluding {filename}' in log
    # In the metrics line of the test epoch.
    assert re.search(
        rf'Epoch\(test\).*acc/top1.*scored: {scored} of '
        rf'{total} videos', log)
    assert f'the metrics score {scored} of {total} videos' in log


# ----------------------------------------------------------------------
# A folder decord cannot decode at all: nothing is lost


@pytest.fixture(scope='module')
def undecordable(tmp_path_factory) -> Corrupted:
    """16 videos (2 classes) of encodings decord 0.6 fails on, 4 frames
    of 16 or 48 pixels wide (resized to 32 by the pipeline)."""
    root = str(tmp_path_factory.mktemp('undecordable'))
    video_dir = osp.join(root, 'videos')
    names = write_decord_unreadable(video_dir, 16, num_frames=16)
    with open(osp.join(root, 'train_list_videos.txt'), 'w') as f:
        f.writelines(f'{name} {i % 2}\n' for i, name in enumerate(names))
    return Corrupted(root, {})


def undecordable_cfg(data: Corrupted, test: bool = False) -> dict:
    resize = [
        dict(type='Resize', scale=(32, 32), keep_ratio=False)
        if step['type'] == 'Resize' else step
        for step in (TEST_PIPELINE if test else PIPELINE)
    ]
    return data.dataset_cfg(
        pipeline=with_fallback(resize, timeout=30),
        frame_size=None,
        on_bad_sample='replace',
        test_mode=test)


@pytest.mark.parametrize('num_workers', [0, 2])
def test_training_loses_no_decord_unreadable_video(undecordable, tmp_path,
                                                   num_workers):
    SEEN.clear()
    runner = tiny_runner(
        str(tmp_path), f'undecordable_train_w{num_workers}',
        undecordable_cfg(undecordable), num_workers)
    runner.train()
    # Every video once, with its own label; none reported bad.
    assert sorted(SEEN) == sorted(undecordable.labels.items())
    assert runner.train_dataloader.dataset.num_bad_samples == 0
    log = read_log(runner)
    assert 'Bad video' not in log
    assert 'Epoch 1: 0 bad training sample(s) replaced' in log
    # The fallback decoder's share, counted over the worker processes.
    assert ('Epoch 1: samples served per decoder: decord 0, pyav 16, '
            'opencv 0 (fallback share 100.0%).') in log


def test_testing_loses_no_decord_unreadable_video(undecordable, tmp_path):
    runner = tiny_runner(
        str(tmp_path),
        'undecordable_test',
        undecordable_cfg(undecordable, test=True),
        num_workers=1,
        test=True)
    runner.test()
    log = read_log(runner)
    assert 'excluding' not in log
    assert re.search(r'Epoch\(test\).*scored: 16 of 16 videos', log)
    assert ('test: samples served per decoder: decord 0, pyav 16, '
            'opencv 0 (fallback share 100.0%).') in log
