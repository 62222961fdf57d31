"""``DecodeWithFallback``: MMAction2's open / sample / decode steps of a video
pipeline as one transform, with a decoder fallback and a time limit.

In a pipeline it takes the place of the three steps it does::

    # MMAction2
    dict(type='DecordInit', io_backend='disk'),
    dict(type='SampleFrames', clip_len=8, frame_interval=8, num_clips=1),
    dict(type='DecordDecode'),
    # with a fallback
    dict(
        type='DecodeWithFallback',
        decoders=['decord', 'pyav', 'opencv'],
        sampler=dict(
            type='SampleFrames', clip_len=8, frame_interval=8, num_clips=1),
        timeout=60,
        io_backend='disk'),

The fallback itself is :class:`~.decoders.DecoderChain`'s.
"""
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform

from mmaction_sttm.registry import TRANSFORMS
from .decoders import DecoderChain, DecoderSpec
from .shared_counter import SharedCounter
from .video_probe import check_frame_sizes

__all__ = ['DecodeWithFallback', 'find_decode_transforms', 'pipeline_steps']


@TRANSFORMS.register_module()
class DecodeWithFallback(BaseTransform):
    """Open a video, sample its frames and decode them, falling back to the
    next decoder when one cannot read it.

    Replaces ``DecordInit``, ``SampleFrames`` (or any sampler) and
    ``DecordDecode`` in a pipeline; the rest of the pipeline is unchanged.
    For each video:

    1. The decoders try to open it, in order. The first that opens it and
       counts at least ``min_frames`` frames gives ``total_frames``.
    2. ``sampler`` runs once, on that count: the frame indices do not depend
       on which decoder later decodes them.
    3. Starting with the decoder that opened the video, each decoder decodes
       those indices. It fails on the video if it raises, takes longer than
       ``timeout``, counts fewer frames than the indices reach, returns
       another number of frames than indices, or frames of different sizes
       (or not ``frame_size``); the next decoder is then tried.
    4. The first decoder that succeeds serves the video. For a video that
       the first decoder reads, the result is what the three MMAction2
       transforms give.

    Required keys: ``filename`` (and what the sampler needs, e.g.
    ``start_index``). Added keys: those of the open, sampling and decode
    transforms (``total_frames``, ``frame_inds``, ``clip_len``, ``imgs``,
    ``img_shape``, ``original_shape``, ...) and ``decoder``, the name of
    the decoder that served the video (add ``'decoder'`` to
    ``PackActionInputs``'s ``meta_keys`` to keep it).

    The samples each decoder served are counted in shared memory, over the
    dataloader worker processes (:attr:`decoder_counts`); ``BadSampleHook``
    logs them per epoch.

    Args:
        sampler (dict | Callable): The frame sampler, e.g.
            ``dict(type='SampleFrames', clip_len=8, frame_interval=8,
            num_clips=1)``, built by MMAction2's ``TRANSFORMS``.
        decoders (Sequence, optional): The decoders, in the order they are
            tried: names (``'decord'``, ``'pyav'``, ``'opencv'``: MMAction2's
            ``DecordInit/DecordDecode``, ``PyAVInit/PyAVDecode``,
            ``OpenCVInit/OpenCVDecode``) or ``dict(name=...,
            init=dict(type=...), decode=dict(type=...))`` for registered
            transforms of your own (or built-in ones with arguments). None:
            decord, PyAV and OpenCV, those installed. ``['decord']``: no
            fallback. Defaults to None.
        timeout (float, optional): Seconds each decoder gets to open and
            decode one video; a decoder that takes longer counts as failed
            on it. None: no limit (the decoders run in the calling thread,
            as in MMAction2). Defaults to None.
        min_frames (int): A decoder that counts fewer frames has not read
            the video (keep it equal to ``RobustVideoDataset``'s
            ``min_frames``). Defaults to 2.
        frame_size (Sequence[int], optional): Expected ``(height, width)``
            of the decoded frames; None only requires the frames of a clip
            to share one size. Defaults to None.
        io_backend (str): Storage backend of the built-in decoders' open
            transforms. Defaults to ``'disk'``.
        **kwargs: File client arguments of the built-in open transforms.

    Raises:
        ValueError: At build time, if an argument is invalid (an unknown
            decoder, a named decoder whose package is missing, names that
            repeat, a wrong ``timeout``, ``min_frames`` or ``frame_size``).
    """

    def __init__(self,
                 sampler: Union[dict, Callable[[dict], Optional[dict]]],
                 decoders: Optional[Sequence[DecoderSpec]] = None,
                 timeout: Optional[float] = None,
                 min_frames: int = 2,
                 frame_size: Optional[Sequence[int]] = None,
                 io_backend: str = 'disk',
                 **kwargs) -> None:
        if isinstance(sampler, dict):
            sampler = TRANSFORMS.build(sampler)
        if not callable(sampler):
            raise ValueError('sampler must be a transform or its dict, e.g. '
                             "dict(type='SampleFrames', clip_len=8), got "
                             f'{sampler!r}')
        if frame_size is not None and not (len(frame_size) == 2 and all(
                isinstance(v, int) and v >= 1 for v in frame_size)):
            raise ValueError('frame_size must be (height, width) with '
                             f'positive ints, got {frame_size!r}')
        self.sampler: Callable[[dict], Optional[dict]] = sampler
        self.frame_size = None if frame_size is None else tuple(frame_size)
        self.io_backend = io_backend
        self.kwargs = kwargs
        self.chain = DecoderChain(
            decoders,
            io_backend=io_backend,
            min_frames=min_frames,
            timeout=timeout,
            **kwargs)
        # Created here, with the pipeline, in the main process before any
        # dataloader worker starts (see SharedCounter).
        self._served: Dict[str, SharedCounter] = {
            name: SharedCounter()
            for name in self.chain.names
        }

    @property
    def decoder_names(self) -> List[str]:
        """Names of the decoders, in the order they are tried."""
        return self.chain.names

    @property
    def timeout(self) -> Optional[float]:
        """Seconds each decoder gets per video (None: no limit)."""
        return self.chain.timeout

    @property
    def min_frames(self) -> int:
        """Fewest frames a decoder must count to have read the video."""
        return self.chain.min_frames

    @property
    def decoder_counts(self) -> Dict[str, int]:
        """Samples each decoder served so far, over all processes."""
        return {name: c.value for name, c in self._served.items()}

    def transform(self, results: dict) -> Optional[dict]:
        """Open, sample and decode the video of ``results``.

        Args:
            results (dict): The sample, with ``filename``.

        Returns:
            dict | None: The decoded sample, with ``decoder``; None if the
            sampler dropped it.

        Raises:
            DecodeFailed: If no decoder reads the video; its message is one
                line with the reason (every decoder's, with a fallback).
        """
        decoded = self.chain.decode(
            results, sample=self.sampler, check=self.frames_problem)
        if decoded is not None:
            self._served[decoded['decoder']].add(1)
        return decoded

    def frames_problem(self, results: dict) -> Optional[str]:
        """What is wrong with decoded frames, or None.

        Args:
            results (dict): Decoded results (``imgs``, ``frame_inds``).

        Returns:
            str | None: Another number of frames than indices, frames of
            different sizes or not ``frame_size``; None if they are fine.
        """
        return decoded_frames_problem(results, self.frame_size)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(sampler={self.sampler!r}, '
                f'decoders={self.decoder_names}, timeout={self.timeout}, '
                f'min_frames={self.min_frames}, '
                f'frame_size={self.frame_size}, '
                f'io_backend={self.io_backend!r})')


def decoded_frames_problem(
        results: dict,
        frame_size: Optional[Sequence[int]] = None) -> Optional[str]:
    """What is wrong with the frames a decoder returned, or None.

    Args:
        results (dict): Decoded results: ``imgs`` and, if sampled,
            ``frame_inds``.
        frame_size (Sequence[int], optional): Expected ``(height, width)``.

    Returns:
        str | None: The problem in a few words; None if the frames match the
        indices in number and share one size (``frame_size`` if given).
    """
    imgs = results['imgs']
    inds = results.get('frame_inds')
    if inds is not None and len(imgs) != np.asarray(inds).size:
        return (f'{len(imgs)} frames decoded for '
                f'{np.asarray(inds).size} frame indices')
    problem = check_frame_sizes([img.shape for img in imgs], frame_size)
    return None if problem is None else str(problem)


def find_decode_transforms(
        transforms: Sequence[Callable]) -> List[DecodeWithFallback]:
    """The :class:`DecodeWithFallback` steps of a built pipeline.

    Args:
        transforms (Sequence[Callable]): The pipeline's transforms; nested
            lists (a transform's ``transforms``) are searched too.

    Returns:
        list[DecodeWithFallback]: In pipeline order.
    """
    found: List[DecodeWithFallback] = []
    for transform in transforms:
        if isinstance(transform, DecodeWithFallback):
            found.append(transform)
        inner = getattr(transform, 'transforms', None)
        if isinstance(inner, (list, tuple)):
            found += find_decode_transforms(inner)
    return found


def pipeline_steps(pipeline: Sequence[dict]) -> Iterator[dict]:
    """The steps of a pipeline config, each ``DecodeWithFallback`` followed
    by its sampler.

    For code that looks for a step by type (the sampler's ``clip_len``, the
    crop size): with ``DecodeWithFallback`` the sampler is inside it. The
    dicts are those of the config, not copies, so editing one edits the
    config.

    Args:
        pipeline (Sequence[dict]): The pipeline's step dicts.

    Yields:
        dict: Each step, and after each ``DecodeWithFallback`` its
        ``sampler`` dict.
    """
    for step in pipeline:
        yield step
        kind = step.get('type', '')
        name = kind.__name__ if isinstance(kind, type) else str(kind)
        if name.split('.')[-1] == DecodeWithFallback.__name__ and \
                isinstance(step.get('sampler'), dict):
            yield step['sampler']
