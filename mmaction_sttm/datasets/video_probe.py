"""Cheap checks of one video file, shared by the dataset and the scanner.

The pieces every check uses: :class:`VideoProblem` (why a video cannot be
used), :func:`file_problem` (missing or empty), :func:`check_frame_sizes`,
:func:`short_error` and :func:`quiet_stderr`. The checks with each decoder
(those of the pipeline's ``DecodeWithFallback``, else its own), which
:class:`~mmaction_sttm.datasets.RobustVideoDataset` runs on test sets at load
time and ``tools/data/check_videos.py`` on whole annotation lists, are in
:mod:`.decoders` (``probe_with_decoder``).
:func:`probe_video` is the same check with decord alone, read directly (no
MMAction2 transform, no torch import).
"""
import contextlib
import io
import os
import os.path as osp
import re
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    'VideoProblem', 'check_frame_sizes', 'file_problem', 'probe_video',
    'quiet_stderr', 'short_error'
]

#: Kinds of :class:`VideoProblem`, in the order the checks run.
PROBLEM_KINDS = ('missing', 'empty', 'unreadable', 'too-short', 'decode-error',
                 'inconsistent-size', 'wrong-size', 'timeout')


@dataclass(frozen=True)
class VideoProblem:
    """Why a video cannot be used.

    Args:
        kind (str): One of :data:`PROBLEM_KINDS`.
        detail (str): A sentence for the log.
    """
    kind: str
    detail: str

    def __str__(self) -> str:
        return f'{self.kind}: {self.detail}'


def short_error(error: BaseException) -> str:
    """One line of an exception: decord's messages carry a timestamp, a
    source path of decord's build machine and sometimes a C++ stack trace,
    none of which helps the reader of a training log."""
    text = str(error).strip() or type(error).__name__
    lines = [line for line in text.splitlines() if line.strip()]
    # decord: "[12:00:00] /path/src/x.cc:83: <message>"; the stack trace
    # that may follow starts with "Stack trace".
    line = next((ln for ln in lines if 'Stack trace' not in ln), lines[0])
    line = re.sub(r'^\[[\d:]+\]\s+\S+:\d+:\s*', '', line.strip())
    return f'{type(error).__name__}: {line}'


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 for the duration of the block.

    FFmpeg (inside decord) prints its own complaint about every broken file
    straight to the process's stderr, bypassing Python; a scan of thousands
    of files would bury its progress bar and summary under them. The reason
    is still reported, through the :class:`VideoProblem`.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (some daemons): nothing to silence
        yield
        return
    try:
        with open(os.devnull, 'w') as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _open_reader(filename: str):
    import decord
    if '://' in filename:
        # Remote storage (the io backends of mmengine.fileio): decord reads
        # the bytes, as DecordInit does.
        from mmengine import fileio
        return decord.VideoReader(
            io.BytesIO(fileio.get(filename)), num_threads=1)
    return decord.VideoReader(filename, num_threads=1)


def file_problem(filename: str) -> Optional[VideoProblem]:
    """The ``'missing'`` / ``'empty'`` problem of a file, if it has one."""
    if '://' in filename:
        from mmengine import fileio
        if not fileio.exists(filename):
            return VideoProblem('missing', 'the file does not exist')
        return None
    if not osp.exists(filename):
        return VideoProblem('missing', 'the file does not exist')
    if not osp.isfile(filename):
        return VideoProblem('missing', 'the path is not a regular file')
    if osp.getsize(filename) == 0:
        return VideoProblem('empty', 'the file is empty (0 bytes)')
    return None


def probe_video(filename: str,
                min_frames: int = 2,
                frame_size: Optional[Sequence[int]] = None,
                num_decode: int = 3) -> Optional[VideoProblem]:
    """Check that decord can read a video and that it is a usable clip.

    The checks, cheapest first: the file exists and is not empty; decord
    opens it and counts at least ``min_frames`` frames; ``num_decode`` frames
    spread evenly from the first to the last decode, all to one size, equal
    to ``frame_size`` if given. Opening reads only the container's index, so
    ``num_decode=0`` costs a few milliseconds per file; decoding the last
    frame finds files whose index survived but whose data is cut short.

    Args:
        filename (str): Path (or URI of an mmengine file backend).
        min_frames (int): Fewest frames a usable video has. MMAction2's
            ``SampleFrames`` loops a short video to fill a clip, so a short
            video is not an error for it, but a 1-frame file is a still image
            (often an encoder that failed after the first frame): its clip is
            one frame repeated. Defaults to 2.
        frame_size (Sequence[int], optional): Expected ``(height, width)`` of
            the decoded frames. None accepts any size that is the same for
            all decoded frames. Defaults to None.
        num_decode (int): Frames to decode. 0 only opens the file. Defaults
            to 3 (first, middle, last).

    Returns:
        VideoProblem or None: Why the video cannot be used, or None if it
        passed every check.
    """
    problem = file_problem(filename)
    if problem is not None:
        return problem
    try:
        reader = _open_reader(filename)
        num_frames = len(reader)
    except Exception as err:  # decord raises RuntimeError / DECORDError
        return VideoProblem('unreadable',
                            f'decord cannot open it ({short_error(err)})')
    if num_frames < min_frames:
        return VideoProblem(
            'too-short', f'it has {num_frames} frame(s), fewer than '
            f'min_frames={min_frames}')
    if num_decode <= 0:
        return None
    indices = sorted(
        set(np.linspace(0, num_frames - 1, num_decode).round().astype(int)))
    try:
        frames = reader.get_batch(indices).asnumpy()
    except Exception as err:
        return VideoProblem(
            'decode-error', f'decoding frames {indices} of {num_frames} '
            f'failed ({short_error(err)})')
    return check_frame_sizes([frame.shape for frame in frames], frame_size)


def check_frame_sizes(
        shapes: Sequence[Tuple[int, ...]],
        frame_size: Optional[Sequence[int]] = None) -> Optional[VideoProblem]:
    """Check that frames of one clip share one size (and the expected one).

    Args:
        shapes (Sequence[tuple]): Shapes ``(H, W, ...)`` of decoded frames.
        frame_size (Sequence[int], optional): Expected ``(height, width)``.

    Returns:
        VideoProblem or None: The problem, or None if the sizes are fine.
    """
    sizes = sorted({tuple(shape[:2]) for shape in shapes})
    if len(sizes) > 1:
        listed = ', '.join(f'{h}x{w}' for h, w in sizes)
        return VideoProblem(
            'inconsistent-size',
            f'its frames decode to different sizes ({listed})')
    if frame_size is not None and sizes and sizes[0] != tuple(frame_size):
        (h, w), (eh, ew) = sizes[0], tuple(frame_size)
        return VideoProblem(
            'wrong-size', f'its frames are {h}x{w} (height x width), '
            f'expected {eh}x{ew}')
    return None
