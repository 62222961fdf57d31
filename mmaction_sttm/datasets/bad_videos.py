"""Damage real video files in the ways real datasets are damaged.

For testing that a pipeline survives bad data: the tests of
:class:`~mmaction_sttm.datasets.RobustVideoDataset` and of
``tools/data/check_videos.py`` corrupt copies of synthetic videos with it, and
a user can do the same to a copy of a few of their own videos.
"""
import os
import os.path as osp
from typing import Dict, Sequence

import numpy as np

from .synthetic import write_video

__all__ = ['BAD_KINDS', 'corrupt_videos']

#: What :func:`corrupt_videos` does, one kind per file, in this order.
BAD_KINDS = (
    'missing',  # deleted (a failed download)
    'empty',  # truncated to 0 bytes (a full disk while writing)
    'truncated',  # the first half of the bytes (an interrupted copy)
    'garbage',  # random bytes of the same size (not a video at all)
    'one-frame',  # a valid mp4 with only the first frame (a failed encode)
    'resized',  # a valid mp4 of the same frames at another size
)


def corrupt_videos(video_dir: str,
                   names: Sequence[str],
                   seed: int = 0,
                   fps: int = 12) -> Dict[str, str]:
    """Corrupt ``names[i]`` in ``video_dir`` with ``BAD_KINDS[i]``, in place.

    Args:
        video_dir (str): Folder holding the videos.
        names (Sequence[str]): At least ``len(BAD_KINDS)`` file names; the
            first ``len(BAD_KINDS)`` are corrupted.
        seed (int): Seed of the random bytes. Defaults to 0.
        fps (int): Frame rate of the rewritten videos. Defaults to 12.

    Returns:
        dict[str, str]: ``{name: kind}`` of the corrupted files.
    """
    import decord
    if len(names) < len(BAD_KINDS):
        raise ValueError(f'need {len(BAD_KINDS)} names, got {len(names)}')
    rng = np.random.default_rng(seed)
    done = {}
    for name, kind in zip(names, BAD_KINDS):
        path = osp.join(video_dir, name)
        size = osp.getsize(path)
        if kind == 'missing':
            os.remove(path)
        elif kind == 'empty':
            open(path, 'wb').close()
        elif kind == 'truncated':
            with open(path, 'rb') as f:
                head = f.read(size // 2)
            with open(path, 'wb') as f:
                f.write(head)
        elif kind == 'garbage':
            with open(path, 'wb') as f:
                f.write(rng.bytes(size))
        else:
            reader = decord.VideoReader(path)
            frames = reader.get_batch(list(range(len(reader)))).asnumpy()
            del reader
            if kind == 'one-frame':
                frames = frames[:1]
            else:
                # 1.5x taller and 2x wider: another aspect ratio too, and a
                # width that stays a multiple of 32 for a 16- or 32-pixel
                # source (decord 0.6 misreads some other widths).
                height, width = frames.shape[1:3]
                rows = np.arange(height * 3 // 2) * 2 // 3
                cols = np.arange(width * 2) // 2
                frames = frames[:, rows][:, :, cols]
            write_video(path, np.ascontiguousarray(frames), fps)
        done[name] = kind
    return done
