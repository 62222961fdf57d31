"""The synthetic motion dataset: deterministic, readable by decord and
MMAction2, and a motion-only task (one frame is at chance level, the motion
between frames is not)."""
import dataclasses
import filecmp
import os
import os.path as osp

import decord
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmaction.registry import DATASETS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from stack import gt_label

from mmaction_sttm.generators import (MOTIONS, SHAPE_CLASSES, SyntheticSpec,
                                      make_synthetic_dataset)

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE_DATASET = osp.join(REPO_ROOT, 'configs', '_base_', 'datasets',
                        'synthetic_motion.py')


def read_list(path: str):
    with open(path) as f:
        return [line.split() for line in f if line.strip()]


def read_video(path: str) -> np.ndarray:
    reader = decord.VideoReader(path)
    return reader.get_batch(list(range(len(reader)))).asnumpy()


def test_layout_and_annotation_format(tiny_dataset, tiny_spec):
    spec = tiny_spec
    with open(osp.join(tiny_dataset, 'classes.txt')) as f:
        classes = f.read().splitlines()
    assert classes == [MOTIONS[i][0] for i in range(spec.num_classes)]
    for split in ('train', 'val'):
        lines = read_list(osp.join(tiny_dataset, f'{split}_list_videos.txt'))
        per_class = getattr(spec, f'{split}_per_class')
        assert len(lines) == spec.num_classes * per_class
        # MMAction2's video list: "<relative path> <label>".
        assert all(len(line) == 2 for line in lines)
        labels = [int(label) for _, label in lines]
        assert np.bincount(labels).tolist() == [per_class] * spec.num_classes
        for name, _ in lines:
            assert name.startswith(f'{split}_') and name.endswith('.mp4')
            assert osp.isfile(osp.join(tiny_dataset, 'videos', name))


def test_decord_reads_every_video(tiny_dataset, tiny_spec):
    names = os.listdir(osp.join(tiny_dataset, 'videos'))
    assert len(names) == 12
    for name in names:
        frames = read_video(osp.join(tiny_dataset, 'videos', name))
        assert frames.shape == (tiny_spec.num_frames, tiny_spec.resolution,
                                tiny_spec.resolution, 3)
        assert frames.dtype == np.uint8
        assert frames.std() > 10  # not blank


def test_same_seed_same_dataset(tmp_path, tiny_dataset, tiny_spec):
    again = str(tmp_path / 'again')
    make_synthetic_dataset(again, tiny_spec)
    for name in ('train_list_videos.txt', 'val_list_videos.txt',
                 'classes.txt'):
        assert filecmp.cmp(
            osp.join(tiny_dataset, name), osp.join(again, name), shallow=False)
    name = read_list(osp.join(again, 'train_list_videos.txt'))[0][0]
    np.testing.assert_array_equal(
        read_video(osp.join(tiny_dataset, 'videos', name)),
        read_video(osp.join(again, 'videos', name)))

    other = str(tmp_path / 'other')
    make_synthetic_dataset(other, dataclasses.replace(tiny_spec, seed=1))
    assert not np.array_equal(
        read_video(osp.join(tiny_dataset, 'videos', name)),
        read_video(osp.join(other, 'videos', name)))


def test_mmaction_pipelines_read_it(tiny_dataset, tiny_spec):
    """The base dataset config's train/val pipelines (decord) produce the
    clips the models expect."""
    cfg = Config.fromfile(BASE_DATASET)
    init_default_scope('mmaction')
    for loader, split, views in (('train', 'train', 1), ('val', 'val', 1),
                                 ('test', 'val', 3)):
        dataset_cfg = cfg[f'{loader}_dataloader'].dataset
        dataset_cfg.ann_file = f'{tiny_dataset}/{split}_list_videos.txt'
        dataset_cfg.data_prefix.video = f'{tiny_dataset}/videos'
        dataset = DATASETS.build(dataset_cfg)
        sample = dataset[0]
        assert tuple(sample['inputs'].shape) == (views, 3, 8, cfg.crop_size,
                                                 cfg.crop_size)
        assert gt_label(sample['data_samples']) in range(tiny_spec.num_classes)


# ---------------------------------------------------------------------------
# Motion-only: linear classifiers on one frame vs on motion between frames
# ---------------------------------------------------------------------------

MOTION_SPEC = SyntheticSpec(
    num_classes=8,
    train_per_class=24,
    val_per_class=16,
    resolution=32,
    num_frames=12,
    seed=3)


@pytest.fixture(scope='module')
def motion_videos(tmp_path_factory):
    """RGB videos and labels of both splits, read back with decord."""
    root = str(tmp_path_factory.mktemp('synthetic_motion'))
    make_synthetic_dataset(root, MOTION_SPEC)
    data = {}
    for split in ('train', 'val'):
        lines = read_list(osp.join(root, f'{split}_list_videos.txt'))
        videos = np.stack(
            [read_video(osp.join(root, 'videos', name)) for name, _ in lines])
        rgb = torch.from_numpy(videos).float() / 255  # N T H W C
        data[split] = rgb, torch.tensor([int(label) for _, label in lines])
    return data


def single_frame_features(videos: torch.Tensor) -> torch.Tensor:
    """The pixels of one frame (the middle one)."""
    return videos[:, videos.shape[1] // 2].flatten(1)


def marker_track_features(videos: torch.Tensor, step: int = 2) -> torch.Tensor:
    """How the marked object moves: the displacement of its white core.

    The core is the only white thing in a scene (objects are saturated,
    the background dull), so the brightest pixel of the smallest colour
    channel finds it in every frame; its mean displacement over ``step``
    frames (on the torus: positions wrap) is the object's velocity. The
    drifting background and the distractors are ignored, as a model has to
    learn to ignore them.
    """
    whiteness = videos.amin(-1)  # N T H W
    size = whiteness.shape[-1]
    flat = whiteness.flatten(2).argmax(-1)
    ys, xs = (flat // size).float(), (flat % size).float()
    half = size / 2
    dx = (xs[:, step:] - xs[:, :-step] + half) % size - half
    dy = (ys[:, step:] - ys[:, :-step] + half) % size - half
    mean = torch.stack([dx.median(1).values, dy.median(1).values], 1)
    return torch.cat([mean, mean**2], 1)


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor,
                 val_x: torch.Tensor, val_y: torch.Tensor,
                 num_classes: int) -> float:
    """Validation accuracy of an L2-regularised softmax regression."""
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    train_x, val_x = (train_x - mean) / std, (val_x - mean) / std
    torch.manual_seed(0)
    layer = torch.nn.Linear(train_x.shape[1], num_classes)
    optim = torch.optim.LBFGS(layer.parameters(), max_iter=200)

    def closure():
        optim.zero_grad()
        loss = F.cross_entropy(layer(train_x), train_y) + 1e-3 * sum(
            (p**2).sum() for p in layer.parameters())
        loss.backward()
        return loss

    optim.step(closure)
    with torch.no_grad():
        return (layer(val_x).argmax(1) == val_y).float().mean().item()


def test_one_frame_is_chance_motion_is_not(motion_videos):
    (train_v, train_y), (val_v, val_y) = motion_videos['train'], \
        motion_videos['val']
    num_classes = MOTION_SPEC.num_classes
    chance = 1 / num_classes
    single = linear_probe(
        single_frame_features(train_v), train_y, single_frame_features(val_v),
        val_y, num_classes)
    motion = linear_probe(
        marker_track_features(train_v), train_y, marker_track_features(val_v),
        val_y, num_classes)
    # 128 validation videos: chance is 12.5% +- 2.9% (one std).
    assert single < chance + 0.1, f'one frame predicts the class: {single}'
    assert motion > 0.7, f'motion does not predict the class: {motion}'


def test_shape_task_is_a_frame_level_task(tmp_path):
    """task='shape' (the pre-training task): still marked object, labelled
    by its shape and quadrant; the quadrant is where its core is in any
    frame."""
    spec = SyntheticSpec(
        num_classes=len(SHAPE_CLASSES),
        train_per_class=1,
        val_per_class=1,
        resolution=32,
        num_frames=6,
        task='shape')
    root = str(tmp_path / 'shape')
    make_synthetic_dataset(root, spec)
    with open(osp.join(root, 'classes.txt')) as f:
        assert f.read().splitlines() == list(SHAPE_CLASSES)
    for name, label in read_list(osp.join(root, 'train_list_videos.txt')):
        frames = torch.from_numpy(read_video(osp.join(root, 'videos',
                                                      name))).float()
        flat = frames.amin(-1).flatten(1).argmax(-1)
        ys, xs = flat // 32, flat % 32
        quadrant = (ys >= 16).long() * 2 + (xs >= 16).long()
        assert quadrant.tolist() == [int(label) % 4] * 6, name


def test_spec_names_the_bad_field():
    with pytest.raises(ValueError, match='task'):
        SyntheticSpec(task='colour').validate()
    with pytest.raises(ValueError, match='num_classes must be 12'):
        SyntheticSpec(task='shape').validate()
    with pytest.raises(ValueError, match='num_distractors'):
        SyntheticSpec(num_distractors=-1).validate()


def test_static_camera_is_the_same_scene_standing_still():
    """camera='static' draws the drifting camera's scene (the same first
    frame) but its background stands still: the last frame differs from the
    first by noise and moved objects only, not by the drift."""
    from mmaction_sttm.generators.synthetic_motion import render_video
    for seed in (0, 4):  # scenes whose background drifts visibly
        drift = render_video(2, np.random.default_rng(seed), 64, 12)
        still = render_video(
            2, np.random.default_rng(seed), 64, 12, camera='static')
        assert np.array_equal(drift[0], still[0])
        change = [
            np.median(np.abs(v[-1].astype(np.float32) - v[0]))
            for v in (drift, still)
        ]
        assert change[1] < 10 < 25 < change[0], change
    with pytest.raises(ValueError, match='camera must be one of'):
        dataclasses.replace(SyntheticSpec(), camera='pan').validate()
