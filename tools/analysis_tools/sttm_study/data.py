"""The study's datasets: the synthetic motion task with a train split, a
**dev** split (where readings and peers are chosen) and a **held-out test**
split (where claims are made and nothing is chosen), plus the frame-level
shape task used for pre-training, and, where a study asks for it, a
**shifted** test split: the same classes rendered with generator settings
that no training, dev or test video uses (:data:`SHIFT`), never used for a
choice either.

The held-out test split is generated from its own generator seed
(:data:`TEST_SEED`), in a folder of its own, so no video of it is a train or
dev video and its size can grow without changing the others.
"""
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, Optional

#: Generator seed of the held-out test split (the dev and train splits use
#: seed 0, the generator's default).
TEST_SEED = 20261203

#: Generator seed of the shifted test split.
SHIFTED_SEED = 20261205

# Frame size, video length and scene of every split.
_COMMON = dict(resolution=32, num_frames=24, num_distractors=2)

#: What the shifted test split changes against every other split: another
#: background texture family (hard-edged bands and checks instead of smooth
#: waves), objects three quarters the size, every object a quarter faster,
#: and four distractors instead of two. Fixed before any run that is scored
#: on it (docs/results/videomae/PROTOCOL.md).
SHIFT = dict(
    background='checker',
    object_scale=0.75,
    speed_scale=1.25,
    num_distractors=4)

#: The motion task's training and dev videos per class, unless a study's
#: ``per_class`` says otherwise.
PER_CLASS = dict(train=160, dev=20)


@dataclass(frozen=True)
class StudyData:
    """Where a study's splits are.

    Args:
        motion (str): Root of the motion task: ``train_list_videos.txt``,
            ``val_list_videos.txt`` (the dev split),
            ``train_subset_list_videos.txt`` (as many training videos as
            dev ones, to measure train accuracy) and ``videos/``.
        shape (str, optional): Root of the shape (pre-training) task, same
            layout. None for a study without pre-training.
        test (str, optional): Root of the held-out test split:
            ``test_list_videos.txt`` and ``videos/``. None when not made.
        shifted (str, optional): Root of the shifted test split:
            ``shifted_list_videos.txt`` and ``videos/``. None when not made.
    """
    motion: str
    shape: Optional[str]
    test: Optional[str] = None
    shifted: Optional[str] = None

    def lists(self, split: str) -> Dict[str, str]:
        """The annotation file and video folder of a motion split.

        Args:
            split (str): ``'train'``, ``'train_subset'``, ``'dev'``,
                ``'test'`` or ``'shifted'``.

        Returns:
            dict: ``ann_file`` and ``video`` (the data prefix).
        """
        for held_out in ('test', 'shifted'):
            if split != held_out:
                continue
            root = getattr(self, held_out)
            if root is None:
                kind = 'held-out' if held_out == 'test' else 'shifted'
                raise ValueError(
                    f'the {kind} test split was not made (make_study_data('
                    f'..., {held_out}_per_class=N))')
            return dict(
                ann_file=osp.join(root, f'{held_out}_list_videos.txt'),
                video=osp.join(root, 'videos'))
        names = dict(train='train', train_subset='train_subset', dev='val')
        if split not in names:
            raise ValueError(f"split must be 'train', 'train_subset', 'dev', "
                             f"'test' or 'shifted', got {split!r}")
        return dict(
            ann_file=osp.join(self.motion, f'{names[split]}_list_videos.txt'),
            video=osp.join(self.motion, 'videos'))


def _count(path: str) -> int:
    with open(path) as f:
        return sum(1 for line in f if line.strip())


def make_study_data(data_root: str,
                    smoke: bool = False,
                    test_per_class: int = 0,
                    camera: str = 'drift',
                    per_class: Optional[Dict[str, int]] = None,
                    shape: bool = True,
                    shifted_per_class: int = 0,
                    scene: Optional[Dict] = None) -> StudyData:
    """Generate the study's datasets under ``data_root`` where missing.

    Args:
        data_root (str): Folder of ``motion/``, ``shape/`` and ``test/``.
        smoke (bool): One video per class and split, for seconds-long
            runs. Defaults to False.
        test_per_class (int): Held-out test videos per class (0: none).
            An existing test split of another size is refused, not
            silently reused. Defaults to 0.
        camera (str): The motion task's camera, ``'drift'`` or
            ``'static'`` (a still background, where a content-adaptive
            reducer has repeats to remove); the same scenes and labels
            either way. The shape (pre-training) task is the same for
            both. Defaults to ``'drift'``.
        per_class (dict, optional): The motion task's ``train`` and ``dev``
            videos per class, in place of the study's 160 and 20 (e.g. the
            demo's 500 and 25). The held-out test split does not depend on
            it. Ignored by ``smoke``.
        shape (bool): Make the shape task (for pre-training). Defaults to
            True.
        shifted_per_class (int): Shifted test videos per class (0: none;
            :data:`SHIFT`, seed :data:`SHIFTED_SEED`, the motion task's
            camera). Defaults to 0.
        scene (dict, optional): Generator settings that replace the
            study's for the motion task's train, dev and test splits (e.g.
            ``dict(resolution=56, **SHIFT)``: fine-tuning on shifted
            scenes; a ``seed`` in it is the train and dev splits' generator
            seed, the test split keeps :data:`TEST_SEED`); the shape
            (pre-training) task keeps the study's. Defaults to None.

    Returns:
        StudyData: The roots.
    """
    from mmaction_sttm.generators import (SHAPE_CLASSES, SyntheticSpec,
                                          make_synthetic_dataset)
    sizes = {**PER_CLASS, **(per_class or {})}
    if set(sizes) != {'train', 'dev'}:
        raise ValueError("per_class takes 'train' and 'dev', got "
                         f'{sorted(per_class)}')
    train, dev, shape_train = (1, 1, 1) if smoke else (sizes['train'],
                                                       sizes['dev'], 120)
    motion_scene = {**_COMMON, **(scene or {})}
    specs = dict(
        motion=SyntheticSpec(
            num_classes=10,
            train_per_class=train,
            val_per_class=dev,
            camera=camera,
            **motion_scene))
    if shape:
        specs['shape'] = SyntheticSpec(
            num_classes=len(SHAPE_CLASSES),
            train_per_class=shape_train,
            val_per_class=1 if smoke else 20,
            task='shape',
            **_COMMON)
    roots = {}
    for task, spec in specs.items():
        root = osp.abspath(osp.join(data_root, task))
        val = osp.join(root, 'val_list_videos.txt')
        want = spec.num_classes * spec.val_per_class
        if not osp.exists(val):
            make_synthetic_dataset(root, spec)
        elif _count(val) != want:
            raise ValueError(f'{val} has {_count(val)} videos, the study '
                             f'asks for {want}; remove {root} to remake it')
        # As many training videos as dev ones, for train accuracy.
        count = _count(osp.join(root, 'val_list_videos.txt'))
        with open(osp.join(root, 'train_list_videos.txt')) as f:
            lines = [line for line in f if line.strip()][:count]
        with open(osp.join(root, 'train_subset_list_videos.txt'), 'w') as f:
            f.writelines(lines)
        roots[task] = root
    held_out = {}
    for split, count, seed, scene in (('test', test_per_class, TEST_SEED,
                                       motion_scene),
                                      ('shifted', shifted_per_class,
                                       SHIFTED_SEED, {
                                           **_COMMON,
                                           **SHIFT
                                       })):
        if not count:
            continue
        folder = osp.abspath(osp.join(data_root, split))
        ann = osp.join(folder, f'{split}_list_videos.txt')
        want = 10 * count
        if not osp.exists(ann):
            spec = SyntheticSpec(
                **{
                    **scene, 'num_classes': 10,
                    'train_per_class': 1,
                    'val_per_class': count,
                    'seed': seed,
                    'camera': camera
                })
            (written, ) = make_synthetic_dataset(
                folder, spec, splits=('val', ))
            os.replace(written, ann)
        elif _count(ann) != want:
            raise ValueError(f'{ann} has {_count(ann)} videos, the study '
                             f'asks for {want}; remove {folder} to remake '
                             'it')
        held_out[split] = folder
    return StudyData(roots['motion'], roots.get('shape'), **held_out)
