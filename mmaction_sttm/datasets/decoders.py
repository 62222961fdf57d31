"""The decoder fallback chain and the per-video decode time limit of
:class:`~mmaction_sttm.datasets.DecodeWithFallback`.

A decoder is a pair of MMAction2 transforms, one that opens a video
(``*Init``: sets ``video_reader`` and ``total_frames``) and one that decodes
the sampled frames (``*Decode``: reads ``frame_inds``, sets ``imgs``).
MMAction2 ships three: decord, PyAV and OpenCV. Each fails on files the
others read (decord 0.6, for instance, cannot copy out the frames of videos
16 or 48 pixels wide, whatever the codec), so they are tried in turn
(:class:`DecoderChain`, built from a list of decoders).

The chain does the fallback itself (:meth:`DecoderChain.decode`); the
pipeline transform ``DecodeWithFallback`` hands it its sampler and its check
of the decoded frames, and raises the chain's :class:`DecodeFailed` when no
decoder reads the video (``RobustVideoDataset`` then names the file and
label).

A decoder that hangs is cut off by :func:`call_with_timeout`, which runs it
in a daemon thread: it needs no signal (signals only reach the main thread of
the main process, and dataloader workers decode outside it), and works the
same in the main process and in worker processes.

:func:`probe_with_decoder` checks one file with one decoder (the test-time
check of ``RobustVideoDataset`` and ``tools/data/check_videos.py``).
"""
import importlib.util
import os.path as osp
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .video_probe import VideoProblem, check_frame_sizes, short_error

__all__ = [
    'BUILTIN_DECODERS', 'DEFAULT_DECODERS', 'DecodeFailed', 'DecodeTimeout',
    'Decoder', 'DecoderChain', 'call_with_timeout', 'check_timeout',
    'find_pipeline_decoder', 'num_abandoned_decodes', 'probe_with_decoder',
    'with_extension'
]

#: name: (open transform, decode transform, Python module it needs).
BUILTIN_DECODERS: Dict[str, Tuple[str, str, str]] = {
    'decord': ('DecordInit', 'DecordDecode', 'decord'),
    'pyav': ('PyAVInit', 'PyAVDecode', 'av'),
    'opencv': ('OpenCVInit', 'OpenCVDecode', 'cv2'),
}
#: The chain of ``decoders=None``: the installed ones of these, in order.
DEFAULT_DECODERS = ('decord', 'pyav', 'opencv')

#: A chain entry: a name, a dict of transforms, or a :class:`Decoder`.
DecoderSpec = Union[str, dict, 'Decoder']


class DecodeTimeout(RuntimeError):
    """A decoder took longer than the time limit."""


class DecodeFailed(RuntimeError):
    """No decoder of a chain read the video.

    Args:
        reason (str): Why, in one line: the one decoder's reason, or every
            decoder's (``no decoder reads it (decord: ...; pyav: ...)``).
        failures (list[str]): ``'<decoder>: <reason>'``, one per try.
    """

    def __init__(self, reason: str, failures: List[str]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.failures = failures


@dataclass
class Decoder:
    """One decoder of a chain.

    Args:
        name (str): Name used in logs and counts.
        init (Callable): The transform that opens the video.
        decode (Callable): The transform that decodes ``frame_inds``.
    """
    name: str
    init: Callable[[dict], dict]
    decode: Callable[[dict], dict]


# ----------------------------------------------------------------------
# Time limit

_abandoned: List[threading.Thread] = []
_abandoned_lock = threading.Lock()


def num_abandoned_decodes() -> int:
    """Timed-out decodes of this process whose thread is still running."""
    with _abandoned_lock:
        _abandoned[:] = [t for t in _abandoned if t.is_alive()]
        return len(_abandoned)


def call_with_timeout(fn: Callable[[], Any], timeout: Optional[float]) -> Any:
    """Call ``fn()``, giving up after ``timeout`` seconds.

    ``fn`` runs in a new daemon thread that the caller waits for. On time-out
    the thread cannot be stopped (Python has no way to kill a thread, and the
    decoders run in C without checking for interruption): it is left running
    and ends when the decoder returns, its result thrown away. Being a daemon
    thread, it never keeps its process alive. :func:`num_abandoned_decodes`
    counts those still running.

    Args:
        fn (Callable): What to run.
        timeout (float, optional): Seconds. None runs ``fn`` directly, in the
            calling thread.

    Returns:
        What ``fn`` returned; its exception is raised as is.

    Raises:
        DecodeTimeout: If ``fn`` did not finish in time.
    """
    if timeout is None:
        return fn()
    box: Dict[str, Any] = {}

    def target() -> None:
        try:
            box['value'] = fn()
        except BaseException as err:  # handed to the caller
            box['error'] = err

    thread = threading.Thread(target=target, name='video-decode', daemon=True)
    thread.start()
    thread.join(max(timeout, 0.0))
    if thread.is_alive():
        with _abandoned_lock:
            _abandoned.append(thread)
        raise DecodeTimeout(f'timed out after {timeout:g} s')
    if 'error' in box:
        raise box['error']
    return box['value']


# ----------------------------------------------------------------------
# The chain


def _type_name(transform: Any) -> str:
    return type(transform).__name__


def _entry(spec: DecoderSpec) -> Tuple[str, dict, dict, Optional[str]]:
    """``(name, init cfg, decode cfg, module needed)`` of a chain entry."""
    if isinstance(spec, str):
        if spec not in BUILTIN_DECODERS:
            raise ValueError(
                f'decoders: unknown decoder {spec!r}; the built-in ones are '
                f'{sorted(BUILTIN_DECODERS)}, or give '
                "dict(name=..., init=dict(type=...), decode=dict(type=...))")
        init, decode, module = BUILTIN_DECODERS[spec]
        return spec, dict(type=init), dict(type=decode), module
    if isinstance(spec, dict) and {'name', 'init', 'decode'} <= set(spec) \
            and isinstance(spec['init'], dict) \
            and isinstance(spec['decode'], dict) \
            and 'type' in spec['init'] and 'type' in spec['decode']:
        return str(spec['name']), dict(spec['init']), dict(
            spec['decode']), None
    raise ValueError(
        'decoders: each entry is a name '
        f'({sorted(BUILTIN_DECODERS)}) or dict(name=..., init=dict(type=...),'
        f' decode=dict(type=...)), got {spec!r}')


def check_timeout(timeout: Any, field: str = 'timeout') -> Optional[float]:
    """``timeout`` if it is a positive number of seconds or None.

    Args:
        timeout (Any): The value to check.
        field (str): Its name in the error. Defaults to ``'timeout'``.

    Returns:
        float | None: ``timeout``.

    Raises:
        ValueError: If it is anything else.
    """
    number = isinstance(timeout, (int, float)) and \
        not isinstance(timeout, bool)
    if timeout is not None and not (number and timeout > 0):
        raise ValueError(f'{field} must be a positive number of seconds or '
                         f'None, got {timeout!r}')
    return timeout


class DecoderChain:
    """Decoders tried on a video, in order, and the fallback between them.

    Built from a list of decoders alone, without a pipeline;
    :class:`~mmaction_sttm.datasets.DecodeWithFallback` is the pipeline
    transform that runs it.

    Args:
        decoders (Sequence, optional): Names (``'decord'``, ``'pyav'``,
            ``'opencv'``), ``dict(name=..., init=dict(type=...),
            decode=dict(type=...))`` of registered transforms, or
            :class:`Decoder` instances. None: :data:`DEFAULT_DECODERS` that
            are installed. Defaults to None.
        io_backend (str): Storage backend of the built-in decoders' open
            transforms (the dict entries get only what their dict says).
            Defaults to ``'disk'``.
        min_frames (int): A decoder that counts fewer frames in a video
            has not opened it. Defaults to 1.
        timeout (float, optional): Seconds each decoder gets per video
            (opening and decoding together). Defaults to None: no limit.
        **kwargs: File client arguments of the built-in open transforms.

    Raises:
        ValueError: If an entry is invalid, names repeat, an explicitly named
            decoder's package is missing, no decoder is installed, or
            ``min_frames`` or ``timeout`` is invalid.
    """

    def __init__(self,
                 decoders: Optional[Sequence[DecoderSpec]] = None,
                 io_backend: str = 'disk',
                 min_frames: int = 1,
                 timeout: Optional[float] = None,
                 **kwargs) -> None:
        from mmaction.registry import TRANSFORMS
        whole = isinstance(min_frames, int) and \
            not isinstance(min_frames, bool)
        if not whole or min_frames < 1:
            raise ValueError(
                f'min_frames must be an int >= 1, got {min_frames!r}')
        self.min_frames = min_frames
        self.timeout = check_timeout(timeout)
        explicit = decoders is not None
        if explicit and (isinstance(decoders, (str, dict, Decoder))
                         or len(decoders) == 0):
            raise ValueError('decoders must be a non-empty list of decoder '
                             f'names or dicts, got {decoders!r}')
        self.decoders: List[Decoder] = []
        for spec in (decoders or DEFAULT_DECODERS):
            if isinstance(spec, Decoder):
                self.decoders.append(spec)
                continue
            name, init_cfg, decode_cfg, module = _entry(spec)
            if module is not None and importlib.util.find_spec(module) is None:
                if explicit:
                    raise ValueError(
                        f'decoders: {name!r} needs the Python package '
                        f'{module!r}, which is not installed')
                continue
            if module is not None:
                # Built-in open transforms all take the file client
                # arguments; custom ones get only what their dict says.
                init_cfg = {**kwargs, 'io_backend': io_backend, **init_cfg}
            self.decoders.append(
                Decoder(name, TRANSFORMS.build(init_cfg),
                        TRANSFORMS.build(decode_cfg)))
        names = self.names
        if len(set(names)) != len(names):
            raise ValueError(f'decoders: names repeat in {names}')
        if not self.decoders:
            raise ValueError(
                'decoders: none of the default decoders '
                f'{list(DEFAULT_DECODERS)} is installed (pip install decord, '
                'av or opencv-python)')

    @property
    def names(self) -> List[str]:
        """Names of the decoders, in the order they are tried."""
        return [d.name for d in self.decoders]

    def __bool__(self) -> bool:
        return bool(self.decoders)

    def decode(self, results: dict, sample: Callable[[dict], Optional[dict]],
               check: Callable[[dict], Optional[str]]) -> Optional[dict]:
        """Open and decode a video with the first decoder that reads it.

        The first decoder that opens the video (and counts at least
        ``min_frames`` frames) gives ``total_frames``, from which ``sample``
        (e.g. ``SampleFrames``) draws the frame indices, once. Every decoder
        then decodes those same indices: the clip and the label do not
        depend on which decoder served it. A later decoder that counts fewer
        frames than the indices need fails rather than wrapping around.

        Args:
            results (dict): The sample before it is opened (``filename``).
            sample (Callable): Draws ``frame_inds`` from the opened results;
                returns None to drop the sample. Its exceptions pass
                through.
            check (Callable): The decoded results -> a problem (str) that
                makes the decoder count as failed, or None.

        Returns:
            dict | None: The decoded results, with ``'decoder'`` naming the
            decoder that served them; None if ``sample`` returned None.

        Raises:
            DecodeFailed: If no decoder reads the video.
        """
        failures: List[str] = []
        elapsed: Dict[str, float] = {}
        opened, attempt = None, None
        for pos, decoder in enumerate(self.decoders):
            attempt, spent = self._timed(decoder, decoder.init, dict(results),
                                         0.0, failures)
            elapsed[decoder.name] = spent
            if attempt is None:
                continue
            total = attempt['total_frames']
            if total < self.min_frames:
                failures.append(
                    f'{decoder.name}: counts {total} frame(s), fewer than '
                    f'min_frames={self.min_frames}')
                continue
            opened = pos
            break
        if opened is None:
            raise self._failed(failures)
        sampled = sample(attempt)
        if sampled is None:
            return None
        inds = np.asarray(sampled.get('frame_inds', [])).reshape(-1)
        for decoder in self.decoders[opened:]:
            if decoder is self.decoders[opened]:
                attempt, spent = dict(sampled), elapsed[decoder.name]
            else:
                attempt, spent = self._timed(decoder, decoder.init,
                                             _without_reader(sampled), 0.0,
                                             failures)
                if attempt is None:
                    continue
                own_total = attempt['total_frames']
                # Sampling used the first opener's count; keep it.
                attempt['total_frames'] = sampled['total_frames']
                if own_total > 0 and inds.size and inds.max() >= own_total:
                    failures.append(
                        f'{decoder.name}: counts {own_total} frames, the '
                        f'indices reach {int(inds.max())}')
                    continue
            decoded, spent = self._timed(decoder, decoder.decode, attempt,
                                         spent, failures)
            if decoded is None:
                continue
            problem = check(decoded)
            if problem is not None:
                failures.append(f'{decoder.name}: {problem}')
                continue
            decoded['decoder'] = decoder.name
            return decoded
        raise self._failed(failures)

    def _timed(self, decoder: Decoder, step: Callable[[dict], dict],
               results: dict, spent: float,
               failures: List[str]) -> Tuple[Optional[dict], float]:
        """Run one step of a decoder within what is left of its time limit;
        on failure append the reason to ``failures`` and return None."""
        left = None if self.timeout is None else self.timeout - spent
        start = time.monotonic()
        try:
            if left is not None and left <= 0:
                raise DecodeTimeout(f'timed out after {spent:.1f} s')
            out = call_with_timeout(lambda: step(results), left)
        except DecodeTimeout:
            spent += time.monotonic() - start
            failures.append(
                f'{decoder.name}: gave up after {spent:.1f} s '
                f'(timeout={self.timeout:g} s; '
                f'{num_abandoned_decodes()} timed-out decode(s) of this '
                'process still running)')
            return None, spent
        except Exception as err:
            failures.append(f'{decoder.name}: {type(step).__name__} failed: '
                            f'{short_error(err)}')
            return None, spent + time.monotonic() - start
        return out, spent + time.monotonic() - start

    def _failed(self, failures: List[str]) -> DecodeFailed:
        if len(self.decoders) == 1:
            reason = failures[0].split(': ', 1)[1] if failures else 'failed'
        else:
            reason = 'no decoder reads it (' + '; '.join(failures) + ')'
        return DecodeFailed(reason, failures)


def _without_reader(results: dict) -> dict:
    """A copy of ``results`` for another decoder to open the video again."""
    copy = dict(results)
    copy.pop('video_reader', None)
    return copy


def find_pipeline_decoder(transforms: Sequence[Callable]) -> Optional[Decoder]:
    """The plain MMAction2 decoder of a built pipeline, if it has one.

    The first built-in open transform (``DecordInit``, ``PyAVInit``,
    ``OpenCVInit``) and the first decode transform of the same decoder after
    it, as the instances of the pipeline (with their arguments).

    Args:
        transforms (Sequence[Callable]): The built pipeline.

    Returns:
        Decoder | None: The decoder, named as in :data:`BUILTIN_DECODERS`;
        None for a pipeline without one (e.g. raw frames, or one that
        decodes with :class:`~mmaction_sttm.datasets.DecodeWithFallback`).
    """
    types = [_type_name(t) for t in transforms]
    opens = {init: name for name, (init, _, _) in BUILTIN_DECODERS.items()}
    for pos, kind in enumerate(types):
        name = opens.get(kind)
        if name is None:
            continue
        decode = BUILTIN_DECODERS[name][1]
        after = next(
            (i for i in range(pos + 1, len(types)) if types[i] == decode),
            None)
        if after is None:
            return None
        return Decoder(name, transforms[pos], transforms[after])
    return None


# ----------------------------------------------------------------------
# Probing one file with one decoder (test-time check, check_videos.py)


def with_extension(filename: str) -> str:
    """The file ``DecordInit`` reads: it appends ``.mp4`` to a name without
    extension; the other decoders are given the same file."""
    return filename + '.mp4' if osp.splitext(filename)[0] == filename \
        else filename


def probe_with_decoder(
        decoder: Decoder,
        filename: str,
        min_frames: int = 2,
        frame_size: Optional[Sequence[int]] = None,
        num_decode: int = 3,
        timeout: Optional[float] = None) -> Optional[VideoProblem]:
    """Check that ``decoder`` reads a usable clip from ``filename``.

    The decoder opens the file and must count at least ``min_frames``
    frames; then ``num_decode`` frames spread from the first to the last
    (one if only ``frame_size`` asks for decoding) must decode to one size,
    ``frame_size`` if given.

    Args:
        decoder (Decoder): The decoder.
        filename (str): The video (name as in the annotation list).
        min_frames (int): Fewest frames. Defaults to 2.
        frame_size (Sequence[int], optional): Expected ``(height, width)``.
        num_decode (int): Frames to decode; 0 only opens. Defaults to 3.
        timeout (float, optional): Seconds for opening and decoding.

    Returns:
        VideoProblem or None: What is wrong, or None.
    """
    start = time.monotonic()

    def run() -> Optional[VideoProblem]:
        try:
            results = decoder.init(dict(filename=with_extension(filename)))
            total = int(results['total_frames'])
        except Exception as err:
            return VideoProblem(
                'unreadable',
                f'{decoder.name} cannot open it ({short_error(err)})')
        if total < min_frames:
            return VideoProblem(
                'too-short', f'{decoder.name} counts {total} frame(s), fewer '
                f'than min_frames={min_frames}')
        count = num_decode if num_decode > 0 else (
            1 if frame_size is not None else 0)
        if count == 0:
            return None
        inds = np.array(
            sorted(set(np.linspace(0, total - 1, count).round().astype(int))))
        results['frame_inds'] = inds
        try:
            imgs = decoder.decode(results)['imgs']
        except Exception as err:
            return VideoProblem(
                'decode-error', f'{decoder.name} fails on frames '
                f'{inds.tolist()} of {total} ({short_error(err)})')
        if len(imgs) != len(inds):
            return VideoProblem(
                'decode-error', f'{decoder.name} returns {len(imgs)} frames '
                f'for {len(inds)} indices')
        return check_frame_sizes([img.shape for img in imgs], frame_size)

    try:
        return call_with_timeout(run, timeout)
    except DecodeTimeout:
        return VideoProblem(
            'timeout', f'{decoder.name} took over {timeout:g} s '
            f'(stopped waiting after {time.monotonic() - start:.1f} s)')
