"""A synthetic motion dataset: classes that only one object's motion tells.

Every video shows the same kind of scene:

- a textured background (random periodic colour waves and blobs) that drifts
  as a whole, in a random direction and at a random speed of its own;
- a **marked** object (a bright shape with a white core) whose motion is the
  label: direction and speed (or sense of rotation) from :data:`MOTIONS`;
- distractor objects, drawn from the same shape, size and colour
  distributions but with a dark core, each moving with a motion drawn from
  :data:`MOTIONS` independently of the label;
- per-frame sensor noise.

So the label is in the motion of one object among several moving things:
neither "where does anything move" nor the global flow tells the class, and
a model has to find the marked object and follow it. Positions wrap around
the frame border and start uniformly at random, so the object's position in
any single frame has the same distribution in every class: one frame carries
no label information and a single-frame classifier is at chance level
(``tests/datasets/test_synthetic.py``).

``task='shape'`` renders the same scenes with still objects (the background
still drifts) and labels each video by the marked object's shape and the
quadrant it sits in: a frame-level task on the same renderer, the analogue of
ImageNet pre-training for the study's pretrain-then-fine-tune regime.

``camera='static'`` renders the same scenes on a background that stands
still (a fixed camera): only the objects and the sensor noise change from
frame to frame, so most of every video repeats itself, which is what a
content-adaptive reducer such as RLT removes. The random draws are the
drifting camera's, so the two cameras give the same scenes, objects and
labels for the same seed.

The videos are written as mp4 (MPEG-4 part 2) with OpenCV and read back by
decord, so they go through MMAction2's real ``DecordInit`` pipelines. The
annotation lists use MMAction2's video-list format (``path label`` per line).
"""
import os
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np

# (name, (dx, dy) in frame widths per frame, angular speed in turns per frame)
# Translations wrap around the border; rotations circle a random centre.
MOTIONS: Tuple[Tuple[str, Tuple[float, float], float], ...] = (
    ('moving right slowly', (0.035, 0.0), 0.0),
    ('moving left slowly', (-0.035, 0.0), 0.0),
    ('moving down slowly', (0.0, 0.035), 0.0),
    ('moving up slowly', (0.0, -0.035), 0.0),
    ('moving right fast', (0.08, 0.0), 0.0),
    ('moving left fast', (-0.08, 0.0), 0.0),
    ('moving down fast', (0.0, 0.08), 0.0),
    ('moving up fast', (0.0, -0.08), 0.0),
    ('turning clockwise', (0.0, 0.0), 1 / 16),
    ('turning anticlockwise', (0.0, 0.0), -1 / 16),
)

SHAPES = ('disc', 'square', 'diamond')
QUADRANTS = ('top left', 'top right', 'bottom left', 'bottom right')
TASKS = ('motion', 'shape')
CAMERAS = ('drift', 'static')
#: Background texture families: smooth colour waves, or the same waves
#: squared into hard-edged bands and checks (another texture family on the
#: same random draws, for a shifted split).
BACKGROUNDS = ('waves', 'checker')
#: Classes of ``task='shape'``: the marked object's shape x its quadrant.
SHAPE_CLASSES = tuple(f'{s} in the {q}' for s in SHAPES for q in QUADRANTS)
# Largest background drift, in frame widths per frame: about the slow
# classes' speed, so the global flow is as strong as the label's motion.
MAX_DRIFT = 0.035


@dataclass
class SyntheticSpec:
    """What to generate.

    Args:
        num_classes (int): Number of classes: motion classes taken in order
            from :data:`MOTIONS` (at most ``len(MOTIONS)``) for
            ``task='motion'``; ``len(SHAPE_CLASSES)`` for ``task='shape'``.
        train_per_class (int): Training videos per class.
        val_per_class (int): Validation videos per class.
        resolution (int): Frame height and width in pixels.
        num_frames (int): Frames per video.
        seed (int): Seed of the whole dataset; the same seed gives the same
            videos.
        fps (int): Frame rate written into the mp4 container.
        num_distractors (int): Moving objects besides the marked one.
        task (str): ``'motion'`` (the label is the marked object's motion)
            or ``'shape'`` (still objects; the label is the marked object's
            shape and quadrant).
        camera (str): ``'drift'`` (the background drifts as a whole) or
            ``'static'`` (it stands still). Defaults to ``'drift'``.
        background (str): Texture family of the background, one of
            :data:`BACKGROUNDS`. Defaults to ``'waves'``.
        object_scale (float): Factor on every object's radius. Defaults
            to 1.0.
        speed_scale (float): Factor on every object's speed (translation
            and rotation), the marked object's and the distractors' alike,
            so the classes keep their order of speeds. Defaults to 1.0.

    With the defaults of the last three fields the videos are exactly those
    of a spec without them: the random draws are the same either way, so a
    shifted split differs from the training distribution in what the
    fields name and in nothing else.
    """
    num_classes: int = 8
    train_per_class: int = 40
    val_per_class: int = 10
    resolution: int = 64
    num_frames: int = 24
    seed: int = 0
    fps: int = 12
    num_distractors: int = 2
    task: str = 'motion'
    camera: str = 'drift'
    background: str = 'waves'
    object_scale: float = 1.0
    speed_scale: float = 1.0

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field."""
        if self.task not in TASKS:
            raise ValueError(f'task must be one of {TASKS}, got {self.task!r}')
        if self.camera not in CAMERAS:
            raise ValueError(f'camera must be one of {CAMERAS}, got '
                             f'{self.camera!r}')
        if self.background not in BACKGROUNDS:
            raise ValueError(f'background must be one of {BACKGROUNDS}, '
                             f'got {self.background!r}')
        for name in ('object_scale', 'speed_scale'):
            value = getattr(self, name)
            if not 0 < value <= 4:
                raise ValueError(f'{name} must be in (0, 4], got {value!r}')
        if self.task == 'shape':
            if self.num_classes != len(SHAPE_CLASSES):
                raise ValueError(f"num_classes must be {len(SHAPE_CLASSES)} "
                                 f"for task='shape', got {self.num_classes}")
        elif not 2 <= self.num_classes <= len(MOTIONS):
            raise ValueError(f'num_classes must be in [2, {len(MOTIONS)}], '
                             f'got {self.num_classes}')
        for name in ('train_per_class', 'val_per_class'):
            if getattr(self, name) < 1:
                raise ValueError(f'{name} must be >= 1, '
                                 f'got {getattr(self, name)}')
        if self.resolution < 16:
            raise ValueError(
                f'resolution must be >= 16, got {self.resolution}')
        if self.num_frames < 2:
            raise ValueError(f'num_frames must be >= 2, got {self.num_frames}')
        if self.num_distractors < 0:
            raise ValueError(f'num_distractors must be >= 0, got '
                             f'{self.num_distractors}')

    @property
    def class_names(self) -> Tuple[str, ...]:
        """Names of the classes, in label order."""
        if self.task == 'shape':
            return SHAPE_CLASSES
        return tuple(MOTIONS[i][0] for i in range(self.num_classes))


def _dull_colour(rng: np.random.Generator) -> np.ndarray:
    """A background colour: never bright, never saturated."""
    return rng.uniform(50, 140, size=3).astype(np.float32)


def _object_colour(rng: np.random.Generator) -> np.ndarray:
    """A saturated, bright colour (two channels high, one low), the same
    distribution for the marked object and the distractors."""
    colour = np.full(3, 40.0, dtype=np.float32)
    colour[rng.permutation(3)[:2]] = (rng.uniform(200,
                                                  240), rng.uniform(40, 240))
    return colour


class _Canvas:
    """Pixel coordinates of one frame size, computed once per video."""

    def __init__(self, size: int) -> None:
        self.size = size
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
        self.xs, self.ys = xs, ys

    def offsets(self, cx: float, cy: float) -> Tuple[np.ndarray, np.ndarray]:
        """Smallest displacement of every pixel from ``(cx, cy)`` on the
        torus, so that shapes wrap around the border."""
        half = self.size / 2
        dx = (self.xs - cx + half) % self.size - half
        dy = (self.ys - cy + half) % self.size - half
        return dx, dy

    def mask(self, shape: int, cx: float, cy: float,
             radius: float) -> np.ndarray:
        """Pixels of a disc (0), square (1) or diamond (2)."""
        dx, dy = self.offsets(cx, cy)
        if shape == 0:
            return dx**2 + dy**2 <= radius**2
        if shape == 1:
            return (np.abs(dx) <= radius) & (np.abs(dy) <= radius)
        return np.abs(dx) + np.abs(dy) <= radius * 1.3


class _Background:
    """A periodic texture that drifts as a whole.

    Colour waves with whole numbers of periods per frame (so the texture is
    seamless on the torus) plus dull blobs, evaluated at the drifted
    coordinates of each frame.
    """

    def __init__(self,
                 rng: np.random.Generator,
                 canvas: _Canvas,
                 static: bool = False,
                 family: str = 'waves') -> None:
        self.canvas = canvas
        self.family = family
        self.base = _dull_colour(rng)
        num_waves = 3
        self.freqs = rng.integers(1, 4, size=(num_waves, 2)) * \
            rng.choice([-1, 1], size=(num_waves, 2))
        self.phases = rng.uniform(0, 2 * np.pi, size=num_waves)
        self.amps = rng.uniform(10, 25, size=(num_waves, 3)).astype(np.float32)
        size = canvas.size
        self.blobs = [(int(rng.integers(0, 3)), *rng.uniform(0, size, 2),
                       rng.uniform(size * 0.05, size * 0.1), _dull_colour(rng))
                      for _ in range(int(rng.integers(3, 6)))]
        angle = rng.uniform(0, 2 * np.pi)
        speed = rng.uniform(0, MAX_DRIFT) * size
        if static:  # drawn all the same: the scene is the drifting one's
            speed = 0.0
        self.velocity = (speed * np.cos(angle), speed * np.sin(angle))

    def render(self, t: int) -> np.ndarray:
        canvas = self.canvas
        size = canvas.size
        shift_x, shift_y = self.velocity[0] * t, self.velocity[1] * t
        xs = (canvas.xs - shift_x) / size
        ys = (canvas.ys - shift_y) / size
        frame = np.broadcast_to(self.base, (size, size, 3)).copy()
        for (fx, fy), phase, amp in zip(self.freqs, self.phases, self.amps):
            wave = np.sin(2 * np.pi * (fx * xs + fy * ys) + phase)
            if self.family == 'checker':
                # Hard edges: the product of the waves' signs over the
                # frame reads as bands and checks.
                wave = np.sign(wave)
            frame += wave[..., None] * amp
        for shape, bx, by, radius, colour in self.blobs:
            mask = canvas.mask(shape, (bx + shift_x) % size,
                               (by + shift_y) % size, radius)
            frame[mask] = colour
        return frame


class _MovingObject:
    """A shape with a core, moving by one of :data:`MOTIONS` (or still)."""

    def __init__(self,
                 rng: np.random.Generator,
                 canvas: _Canvas,
                 motion: Optional[int],
                 core: np.ndarray,
                 scale: float = 1.0,
                 speed: float = 1.0) -> None:
        size = canvas.size
        self.canvas = canvas
        self.shape = int(rng.integers(0, len(SHAPES)))
        self.radius = rng.uniform(size * 0.12, size * 0.16) * scale
        self.colour = _object_colour(rng)
        self.core = core
        self.x0, self.y0 = rng.uniform(0, size, 2)
        self.phase = rng.uniform(0, 2 * np.pi)
        self.orbit = rng.uniform(size * 0.15, size * 0.3)
        if motion is None:
            self.velocity, self.omega = (0.0, 0.0), 0.0
        else:
            _, (dx, dy), omega = MOTIONS[motion]
            self.velocity, self.omega = (dx * speed, dy * speed), omega * speed

    def centre(self, t: int) -> Tuple[float, float]:
        size = self.canvas.size
        if self.omega:
            angle = self.phase + 2 * np.pi * self.omega * t
            cx = self.x0 + self.orbit * np.cos(angle)
            cy = self.y0 + self.orbit * np.sin(angle)
        else:
            cx = self.x0 + self.velocity[0] * size * t
            cy = self.y0 + self.velocity[1] * size * t
        return cx % size, cy % size

    def draw(self, frame: np.ndarray, t: int) -> None:
        cx, cy = self.centre(t)
        frame[self.canvas.mask(self.shape, cx, cy, self.radius)] = \
            self.colour
        # The core: a disc of half the radius, white on the marked object.
        frame[self.canvas.mask(0, cx, cy, self.radius * 0.5)] = self.core


WHITE = np.full(3, 255.0, dtype=np.float32)
DARK = np.full(3, 15.0, dtype=np.float32)


def render_video(label: int,
                 rng: np.random.Generator,
                 resolution: int,
                 num_frames: int,
                 num_distractors: int = 2,
                 task: str = 'motion',
                 num_classes: int = len(MOTIONS),
                 camera: str = 'drift',
                 background: str = 'waves',
                 object_scale: float = 1.0,
                 speed_scale: float = 1.0) -> np.ndarray:
    """Render one video of class ``label``.

    Args:
        label (int): Index into :data:`MOTIONS` (``task='motion'``) or
            :data:`SHAPE_CLASSES` (``task='shape'``).
        rng (np.random.Generator): Source of all randomness of the video.
        resolution (int): Frame height and width.
        num_frames (int): Number of frames.
        num_distractors (int): Moving objects besides the marked one.
            Defaults to 1.
        task (str): ``'motion'`` or ``'shape'``. Defaults to ``'motion'``.
        num_classes (int): Motions the distractors draw from (the dataset's
            classes). Defaults to all of :data:`MOTIONS`.
        camera (str): ``'drift'`` or ``'static'`` background. Defaults to
            ``'drift'``.
        background (str): One of :data:`BACKGROUNDS`. Defaults to
            ``'waves'``.
        object_scale (float): Factor on the objects' radii. Defaults to 1.
        speed_scale (float): Factor on the objects' speeds. Defaults to 1.

    Returns:
        np.ndarray: ``(num_frames, resolution, resolution, 3)`` uint8 frames
        in RGB order.
    """
    canvas = _Canvas(resolution)
    background = _Background(rng, canvas, camera == 'static', background)
    distractors = [
        _MovingObject(
            rng, canvas,
            None if task == 'shape' else int(rng.integers(0, num_classes)),
            DARK, object_scale, speed_scale) for _ in range(num_distractors)
    ]
    if task == 'shape':
        target = _MovingObject(rng, canvas, None, WHITE, object_scale)
        target.shape = label // len(QUADRANTS)
        # A random position inside the labelled quadrant, kept clear of its
        # edges so that the object is inside it.
        quadrant = label % len(QUADRANTS)
        half = resolution / 2
        margin = target.radius * 0.5
        target.x0 = (quadrant % 2) * half + rng.uniform(margin, half - margin)
        target.y0 = (quadrant // 2) * half + rng.uniform(margin, half - margin)
    else:
        target = _MovingObject(rng, canvas, label, WHITE, object_scale,
                               speed_scale)
    noise_std = rng.uniform(2, 6)
    frames = np.empty((num_frames, resolution, resolution, 3), dtype=np.uint8)
    for t in range(num_frames):
        frame = background.render(t)
        for obj in distractors:
            obj.draw(frame, t)
        # The marked object is drawn last: it is never hidden.
        target.draw(frame, t)
        frame += rng.normal(0, noise_std, frame.shape).astype(np.float32)
        frames[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return frames


def write_video(path: str, frames: np.ndarray, fps: int) -> None:
    """Write RGB ``frames`` to an mp4 file that decord can read.

    Args:
        path (str): Output file.
        frames (np.ndarray): ``(T, H, W, 3)`` uint8 RGB frames.
        fps (int): Frame rate stored in the container.
    """
    import cv2
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps,
                             (w, h))
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot open a mp4 writer for {path}')
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()


def make_synthetic_dataset(
    out_dir: str,
    spec: Optional[SyntheticSpec] = None,
    splits: Sequence[str] = ('train', 'val')
) -> List[str]:
    """Generate videos and MMAction2 annotation lists under ``out_dir``.

    Layout: ``out_dir/videos/{split}_{index:05d}.mp4``,
    ``out_dir/{split}_list_videos.txt`` and ``out_dir/classes.txt``.

    Args:
        out_dir (str): Destination folder, created if needed.
        spec (SyntheticSpec, optional): What to generate. Defaults to
            ``SyntheticSpec()``.
        splits (Sequence[str]): Which of ``'train'`` and ``'val'`` to write.

    Returns:
        list[str]: Paths of the annotation files written.
    """
    spec = spec or SyntheticSpec()
    spec.validate()
    os.makedirs(osp.join(out_dir, 'videos'), exist_ok=True)
    with open(osp.join(out_dir, 'classes.txt'), 'w') as f:
        f.writelines(f'{name}\n' for name in spec.class_names)
    ann_files = []
    for split_id, split in enumerate(('train', 'val')):
        per_class = getattr(spec, f'{split}_per_class')
        if split not in splits:
            continue
        # One independent stream per split: the val set does not change when
        # the size of the train set does.
        rng = np.random.default_rng([spec.seed, split_id])
        labels = np.repeat(np.arange(spec.num_classes), per_class)
        rng.shuffle(labels)
        lines = []
        for index, label in enumerate(labels):
            name = f'{split}_{index:05d}.mp4'
            frames = render_video(
                int(label), rng, spec.resolution, spec.num_frames,
                spec.num_distractors, spec.task, spec.num_classes, spec.camera,
                spec.background, spec.object_scale, spec.speed_scale)
            write_video(osp.join(out_dir, 'videos', name), frames, spec.fps)
            lines.append(f'{name} {int(label)}\n')
        ann_file = osp.join(out_dir, f'{split}_list_videos.txt')
        with open(ann_file, 'w') as f:
            f.writelines(lines)
        ann_files.append(ann_file)
    return ann_files
