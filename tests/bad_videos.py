"""Real video files that break decoders, made by the tests themselves.

- :func:`corrupt_videos` damages copies of good videos the ways real
  datasets are damaged (missing, empty, cut short, random bytes, one frame,
  another resolution, a text file named ``.mp4``, a broken index).
- :func:`write_decord_unreadable` writes valid videos that decord 0.6 opens
  but cannot return frames of (``get_batch`` fails with "The size must
  exactly match"), while PyAV and OpenCV read them: frames 16 or 48 pixels
  wide, in every codec tried (mp4v, MJPG, XVID).

Only the tests use them; they depend on OpenCV and numpy alone.
"""
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import numpy as np

__all__ = [
    'BAD_KINDS', 'DECORD_UNREADABLE', 'corrupt_videos', 'write_video',
    'write_decord_unreadable'
]

#: What :func:`corrupt_videos` does, one kind per file, in this order.
BAD_KINDS = (
    'missing',  # deleted (a failed download)
    'empty',  # truncated to 0 bytes (a full disk while writing)
    'truncated',  # the first half of the bytes (an interrupted copy)
    'garbage',  # random bytes of the same size (not a video at all)
    'one-frame',  # a valid mp4 with only the first frame (a failed encode)
    'resized',  # a valid mp4 of the same frames at another size
)

#: ``(fourcc, extension, height, width)`` of encodings that decord 0.6
#: cannot decode but PyAV and OpenCV can (found by trying frame sizes and
#: codecs: widths 16 and 48 fail, 24, 32, 36, 40, 56 and 64 work).
DECORD_UNREADABLE: Tuple[Tuple[str, str, int, int], ...] = (
    ('mp4v', 'mp4', 48, 48),
    ('mp4v', 'mp4', 32, 16),
    ('MJPG', 'avi', 32, 48),
    ('XVID', 'avi', 16, 16),
)


def write_video(path: str,
                frames: np.ndarray,
                fps: int = 12,
                fourcc: str = 'mp4v') -> None:
    """Write ``(T, H, W, 3)`` uint8 RGB ``frames`` with OpenCV."""
    import cv2
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), fps,
                             (width, height))
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot write {fourcc} to {path}')
    for frame in frames:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()


def _read_all(path: str) -> np.ndarray:
    import cv2
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame[..., ::-1])
    capture.release()
    return np.stack(frames)


def corrupt_videos(video_dir: str,
                   names: Sequence[str],
                   seed: int = 0,
                   fps: int = 12,
                   kinds: Sequence[str] = BAD_KINDS) -> Dict[str, str]:
    """Damage ``names[i]`` in ``video_dir`` with ``kinds[i]``, in place.

    Besides :data:`BAD_KINDS`: ``'text'`` (a text file under the video's
    name), ``'cut-<fraction>'`` (the first ``fraction`` of the bytes, e.g.
    ``'cut-0.9'``) and ``'broken-index'`` (the mp4 ``moov`` box, which holds
    the index, overwritten with zeros).

    Args:
        video_dir (str): Folder holding the videos.
        names (Sequence[str]): At least ``len(kinds)`` file names.
        seed (int): Seed of the random bytes. Defaults to 0.
        fps (int): Frame rate of rewritten videos. Defaults to 12.
        kinds (Sequence[str]): One kind per file. Defaults to BAD_KINDS.

    Returns:
        dict[str, str]: ``{name: kind}`` of the damaged files.
    """
    if len(names) < len(kinds):
        raise ValueError(f'need {len(kinds)} names, got {len(names)}')
    rng = np.random.default_rng(seed)
    done = {}
    for name, kind in zip(names, kinds):
        path = osp.join(video_dir, name)
        with open(path, 'rb') as f:
            data = f.read()
        if kind == 'missing':
            os.remove(path)
        elif kind == 'empty':
            open(path, 'wb').close()
        elif kind == 'truncated' or kind.startswith('cut-'):
            fraction = 0.5 if kind == 'truncated' else float(kind[4:])
            with open(path, 'wb') as f:
                f.write(data[:int(len(data) * fraction)])
        elif kind == 'garbage':
            with open(path, 'wb') as f:
                f.write(rng.bytes(len(data)))
        elif kind == 'text':
            with open(path, 'w') as f:
                f.write('404 Not Found\n' * 20)
        elif kind == 'broken-index':
            at = data.find(b'moov')
            if at < 4:
                raise ValueError(f'{path} has no moov box')
            size = int.from_bytes(data[at - 4:at], 'big')
            with open(path, 'wb') as f:
                f.write(data[:at + 4] + bytes(size - 8) + data[at - 4 + size:])
        elif kind in ('one-frame', 'resized'):
            frames = _read_all(path)
            if kind == 'one-frame':
                frames = frames[:1]
            else:
                # 1.5x taller and 2x wider: another aspect ratio, and a width
                # that decord reads (a multiple of 32 for a 16- or 32-pixel
                # source; see DECORD_UNREADABLE).
                height, width = frames.shape[1:3]
                rows = np.arange(height * 3 // 2) * 2 // 3
                cols = np.arange(width * 2) // 2
                frames = frames[:, rows][:, :, cols]
            write_video(path, np.ascontiguousarray(frames), fps)
        else:
            raise ValueError(f'unknown kind {kind!r}')
        done[name] = kind
    return done


def write_decord_unreadable(video_dir: str,
                            num_videos: int,
                            num_frames: int = 16,
                            seed: int = 0) -> List[str]:
    """Write videos of :data:`DECORD_UNREADABLE` encodings, cycling
    through them: random moving blocks, so that frames differ.

    Args:
        video_dir (str): Output folder.
        num_videos (int): How many.
        num_frames (int): Frames per video. Defaults to 16.
        seed (int): Seed of the contents. Defaults to 0.

    Returns:
        list[str]: The file names written, in order.
    """
    rng = np.random.default_rng(seed)
    os.makedirs(video_dir, exist_ok=True)
    names = []
    for i in range(num_videos):
        fourcc, ext, height, width = DECORD_UNREADABLE[i %
                                                       len(DECORD_UNREADABLE)]
        base = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        frames = np.stack(
            [np.roll(base, 2 * t, axis=1) for t in range(num_frames)])
        name = f'undecordable_{i:03d}_{fourcc}_{height}x{width}.{ext}'
        write_video(osp.join(video_dir, name), frames, fourcc=fourcc)
        names.append(name)
    return names
