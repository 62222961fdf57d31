"""A synthetic motion dataset: classes that only motion can tell apart.

Every video shows the same kind of scene: a static cluttered background
(random coloured rectangles and discs, the static distractors), per-frame
sensor noise, and one bright moving object whose shape, colour and size are
drawn from one distribution for all classes. Classes differ only in how the object
moves (direction, speed or sense of rotation). Positions wrap around the frame
border and start uniformly at random, so the object's position in any single
frame has the same distribution in every class: one frame carries no label
information and a single-frame classifier is at chance level.

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


@dataclass
class SyntheticSpec:
    """What to generate.

    Args:
        num_classes (int): Number of motion classes, taken in order from
            :data:`MOTIONS` (at most ``len(MOTIONS)``).
        train_per_class (int): Training videos per class.
        val_per_class (int): Validation videos per class.
        resolution (int): Frame height and width in pixels.
        num_frames (int): Frames per video.
        seed (int): Seed of the whole dataset; the same seed gives the same
            videos.
        fps (int): Frame rate written into the mp4 container.
    """
    num_classes: int = 8
    train_per_class: int = 40
    val_per_class: int = 10
    resolution: int = 64
    num_frames: int = 24
    seed: int = 0
    fps: int = 12

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field."""
        if not 2 <= self.num_classes <= len(MOTIONS):
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
            raise ValueError(
                f'num_frames must be >= 2, got {self.num_frames}')


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(30, 226, size=3).astype(np.float32)


def _object_colour(rng: np.random.Generator) -> np.ndarray:
    """A saturated, bright colour: the moving object stands out from the
    (darker, duller) clutter in every class alike."""
    colour = np.full(3, 40.0, dtype=np.float32)
    colour[rng.permutation(3)[:2]] = (255.0, rng.uniform(40, 255))
    return colour


def _draw_shape(canvas: np.ndarray, shape: int, cx: float, cy: float,
                radius: float, colour: np.ndarray) -> None:
    """Draw a disc (0), square (1) or diamond (2) in place, wrapping around
    the border so a shape crossing it appears on the other side."""
    h, w = canvas.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    # Smallest displacement on the torus.
    dx = (xs - cx + w / 2) % w - w / 2
    dy = (ys - cy + h / 2) % h - h / 2
    if shape == 0:
        mask = dx**2 + dy**2 <= radius**2
    elif shape == 1:
        mask = (np.abs(dx) <= radius) & (np.abs(dy) <= radius)
    else:
        mask = np.abs(dx) + np.abs(dy) <= radius * 1.3
    canvas[mask] = colour


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Static clutter: a colour gradient plus random rectangles and discs."""
    base = _random_colour(rng) * 0.5
    canvas = np.broadcast_to(base, (size, size, 3)).copy()
    for _ in range(int(rng.integers(6, 12))):
        x0, y0 = rng.integers(0, size, size=2)
        x1 = min(size, x0 + int(rng.integers(size // 10, size // 3)))
        y1 = min(size, y0 + int(rng.integers(size // 10, size // 3)))
        canvas[y0:y1, x0:x1] = _random_colour(rng) * 0.6
    for _ in range(int(rng.integers(2, 5))):
        _draw_shape(canvas, int(rng.integers(0, 3)), *rng.uniform(0, size, 2),
                    rng.uniform(size * 0.04, size * 0.08),
                    _random_colour(rng) * 0.6)
    return canvas


def render_video(label: int, rng: np.random.Generator, resolution: int,
                 num_frames: int) -> np.ndarray:
    """Render one video of class ``label``.

    Args:
        label (int): Index into :data:`MOTIONS`.
        rng (np.random.Generator): Source of all randomness of the video.
        resolution (int): Frame height and width.
        num_frames (int): Number of frames.

    Returns:
        np.ndarray: ``(num_frames, resolution, resolution, 3)`` uint8 frames
        in RGB order.
    """
    _, (vx, vy), omega = MOTIONS[label]
    size = resolution
    background = _background(rng, size)
    shape = int(rng.integers(0, 3))
    radius = rng.uniform(size * 0.11, size * 0.15)
    colour = _object_colour(rng)
    x0, y0 = rng.uniform(0, size, 2)
    phase = rng.uniform(0, 2 * np.pi)
    orbit = rng.uniform(size * 0.15, size * 0.3)
    noise_std = rng.uniform(2, 6)
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for t in range(num_frames):
        if omega:
            angle = phase + 2 * np.pi * omega * t
            cx = x0 + orbit * np.cos(angle)
            cy = y0 + orbit * np.sin(angle)
        else:
            cx = x0 + vx * size * t
            cy = y0 + vy * size * t
        frame = background.copy()
        _draw_shape(frame, shape, cx % size, cy % size, radius, colour)
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


def make_synthetic_dataset(out_dir: str,
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
        f.writelines(f'{MOTIONS[i][0]}\n' for i in range(spec.num_classes))
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
            frames = render_video(int(label), rng, spec.resolution,
                                  spec.num_frames)
            write_video(osp.join(out_dir, 'videos', name), frames, spec.fps)
            lines.append(f'{name} {int(label)}\n')
        ann_file = osp.join(out_dir, f'{split}_list_videos.txt')
        with open(ann_file, 'w') as f:
            f.writelines(lines)
        ann_files.append(ann_file)
    return ann_files
