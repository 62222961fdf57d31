"""A ``VideoDataset`` that survives bad videos without touching labels.

Large video datasets always hold a few files that cannot be used: missing
downloads, empty or truncated files, containers FFmpeg cannot parse, one-frame
"videos", frames of an unexpected size. MMAction2's ``VideoDataset`` passes
the first decoder exception of such a file up to the training loop, which
dies hours into a run, usually with a decord message that does not even name
the file. :class:`RobustVideoDataset` is a drop-in replacement:

- ``on_bad_sample='raise'`` (the default) behaves like ``VideoDataset`` but
  every failure is a :class:`BadVideoError` naming the file, its label, the
  transform that failed and why.
- ``on_bad_sample='replace'``, in training: the failure is logged (file and
  reason), counted, and another sample, drawn at random, is returned *with its
  own label*; no label is ever changed. In test mode a sample cannot be
  replaced without biasing the metric, so the videos are checked when the
  annotation list is loaded and the unusable ones are excluded, each named in
  a warning; :class:`~mmaction_sttm.datasets.BadSampleHook` then reports how
  many videos were scored out of how many.

Besides exceptions, a sample counts as bad when its video has fewer than
``min_frames`` frames, when its decoded frames differ in size from each other
(or from ``frame_size``), or when the packed ``inputs`` tensor differs from
``input_shape`` (which would otherwise break batch collation).

Decoding is the pipeline's: MMAction2's ``DecordInit`` / ``SampleFrames`` /
``DecordDecode`` read each video with decord alone, as in MMAction2;
:class:`~mmaction_sttm.datasets.DecodeWithFallback` in their place tries
decord, then PyAV, then OpenCV, each within a time limit, and a video is bad
only when none of them reads it.
"""
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from mmaction.datasets import VideoDataset
from mmengine.logging import print_log

from mmaction_sttm.registry import DATASETS
from .decoders import (DecodeFailed, find_pipeline_decoder, probe_with_decoder,
                       with_extension)
from .shared_counter import SharedCounter
from .transforms import (DecodeWithFallback, decoded_frames_problem,
                         find_decode_transforms)
from .video_probe import VideoProblem, file_problem, quiet_stderr, short_error

__all__ = ['BadVideoError', 'RobustVideoDataset']

ON_BAD_SAMPLE = ('raise', 'replace')
TEST_PRECHECKS = (None, 'open', 'decode')
#: Former arguments, now ``DecodeWithFallback``'s: the argument there.
MOVED_TO_PIPELINE = {
    'decoders': 'decoders=[...]',
    'decode_timeout': 'timeout=...',
}


class BadVideoError(RuntimeError):
    """A video (sample) that the pipeline cannot turn into a valid input.

    The message names the file. Takes the message as its only positional
    argument, so that PyTorch's DataLoader can re-raise it in the main process
    with the worker's traceback.

    Args:
        message (str): What went wrong, with the file name.
        filename (str, optional): The video.
        reason (str, optional): The reason alone.
        label (Any, optional): The sample's label.
    """

    def __init__(self,
                 message: str,
                 filename: Optional[str] = None,
                 reason: Optional[str] = None,
                 label: Any = None) -> None:
        super().__init__(message)
        self.filename = filename
        self.reason = reason
        self.label = label


@DATASETS.register_module()
class RobustVideoDataset(VideoDataset):
    """MMAction2's ``VideoDataset`` with an explicit policy for bad videos.

    Takes every argument of ``VideoDataset`` (same annotation format, same
    pipelines), plus the options below. The decoders are the pipeline's:
    MMAction2's ``DecordInit`` / ``SampleFrames`` / ``DecordDecode`` (no
    fallback, as in MMAction2) or :class:`DecodeWithFallback` in their place
    (decoder fallback and time limit). The former ``decoders=`` and
    ``decode_timeout=`` arguments are ``DecodeWithFallback``'s now (passing
    them here is an error that says so).

    Args:
        on_bad_sample (str): ``'raise'``: a bad sample stops the run with a
            :class:`BadVideoError` naming the file. ``'replace'``: in
            training, log it and return another random sample (with its own
            label) instead; in test mode, pre-check the videos at load time
            and exclude the unusable ones (see ``test_precheck``). Defaults
            to ``'raise'``.
        min_frames (int): A video with fewer frames is bad. ``SampleFrames``
            loops shorter videos to fill the clip, which is fine for a video
            a little shorter than the clip but turns a 1-frame file into a
            still image; 0-frame videos always fail. Defaults to 2.
        frame_size (Sequence[int], optional): Expected ``(height, width)`` of
            the decoded frames; a video decoding to another size is bad. None
            only requires the frames of a clip to share one size. Defaults to
            None.
        input_shape (Sequence[int], optional): Expected shape of the packed
            ``inputs`` tensor of one sample, e.g. ``(1, 3, 8, 224, 224)`` for
            one ``NCTHW`` clip. A sample of another shape is bad (it would
            break batch collation). None skips the check. Defaults to None.
        test_precheck (str, optional): What the load-time check of test mode
            with ``on_bad_sample='replace'`` does per video: ``'open'`` (file
            exists, is not empty, a decoder opens it and counts at least
            ``min_frames`` frames, and the first frame has ``frame_size`` if
            that is set), ``'decode'`` (also decodes the first, middle and
            last frames, which finds files cut short) or None (no check).
            The decoders are those of the pipeline's
            :class:`DecodeWithFallback` (with its ``timeout``; the video is
            usable if one of them reads it), else the pipeline's own
            MMAction2 decoder (e.g. ``DecordInit`` / ``DecordDecode``).
            Defaults to ``'open'``.
        precheck_workers (int): Threads of that check (decord releases the
            GIL while it reads). Defaults to 8.
        max_refetch (int): In training with ``'replace'``, how many bad
            samples in a row are replaced before giving up with an error (so
            that a broken pipeline or data root fails fast instead of
            replacing every sample). Defaults to 10.
        strict_scoring (bool): Test mode: check every video when the
            annotation list is loaded (``test_precheck``, ``'open'`` if
            None) and raise a :class:`BadVideoError` listing all the videos
            that cannot be scored, instead of scoring the others. Defaults
            to False.
        **kwargs: Arguments of ``VideoDataset``.
    """

    def __init__(self,
                 ann_file: str,
                 pipeline: List[Union[dict, Callable]],
                 on_bad_sample: str = 'raise',
                 min_frames: int = 2,
                 frame_size: Optional[Sequence[int]] = None,
                 input_shape: Optional[Sequence[int]] = None,
                 test_precheck: Optional[str] = 'open',
                 precheck_workers: int = 8,
                 max_refetch: int = 10,
                 strict_scoring: bool = False,
                 **kwargs) -> None:
        moved = [name for name in MOVED_TO_PIPELINE if name in kwargs]
        if moved:
            raise ValueError(
                f'{type(self).__name__}: '
                f"{' and '.join(f'{name}=' for name in moved)} moved to the "
                "pipeline: use dict(type='DecodeWithFallback', "
                f"{', '.join(MOVED_TO_PIPELINE[n] for n in moved)}, "
                "sampler=dict(type='SampleFrames', ...)) in place of the "
                "pipeline's DecordInit, SampleFrames and DecordDecode")
        if on_bad_sample not in ON_BAD_SAMPLE:
            raise ValueError(f'on_bad_sample must be one of {ON_BAD_SAMPLE}, '
                             f'got {on_bad_sample!r}')
        if not isinstance(min_frames, int) or min_frames < 1:
            raise ValueError(
                f'min_frames must be an int >= 1, got {min_frames!r}')
        if frame_size is not None and (len(frame_size) != 2
                                       or min(frame_size) < 1):
            raise ValueError('frame_size must be (height, width) with '
                             f'positive ints, got {frame_size!r}')
        if test_precheck not in TEST_PRECHECKS:
            raise ValueError(f'test_precheck must be one of '
                             f'{TEST_PRECHECKS}, got {test_precheck!r}')
        if not isinstance(max_refetch, int) or max_refetch < 0:
            raise ValueError(
                f'max_refetch must be an int >= 0, got {max_refetch!r}')
        if not isinstance(strict_scoring, bool):
            raise ValueError('strict_scoring must be True or False, got '
                             f'{strict_scoring!r}')
        # Set before the base class's __init__, which loads and filters the
        # annotation list (filter_data below reads these).
        self.on_bad_sample = on_bad_sample
        self.min_frames = min_frames
        self.frame_size = None if frame_size is None else tuple(frame_size)
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.test_precheck = test_precheck
        self.precheck_workers = max(1, int(precheck_workers))
        #: Videos of the annotation list before the test-mode check.
        self.num_listed = 0
        #: ``(filename, reason)`` of the videos the test-mode check excluded.
        self.excluded: List[Tuple[str, str]] = []
        #: File that replaced samples are appended to (``filename<TAB>label
        #: <TAB>reason``); :class:`BadSampleHook` sets it to one in the log
        #: directory. None: the log only.
        self.bad_sample_file: Optional[str] = None
        self._bad_samples = SharedCounter()
        self.strict_scoring = strict_scoring
        super().__init__(
            ann_file, pipeline=pipeline, max_refetch=max_refetch, **kwargs)

    # ------------------------------------------------------------------
    # Decoders: those of the pipeline

    @property
    def decode_transforms(self) -> List[DecodeWithFallback]:
        """The pipeline's :class:`DecodeWithFallback` steps (none for a
        plain MMAction2 pipeline)."""
        return find_decode_transforms(self.pipeline.transforms)

    @property
    def decoder_names(self) -> List[str]:
        """Names of the pipeline's fallback decoders, in the order they are
        tried (empty without a :class:`DecodeWithFallback`)."""
        names = [n for t in self.decode_transforms for n in t.decoder_names]
        return list(dict.fromkeys(names))

    @property
    def decoder_counts(self) -> Dict[str, int]:
        """Samples served by each decoder of the pipeline's
        :class:`DecodeWithFallback` so far, over all dataloader workers
        (training and test alike); empty without one."""
        counts: Dict[str, int] = {}
        for transform in self.decode_transforms:
            for name, count in transform.decoder_counts.items():
                counts[name] = counts.get(name, 0) + count
        return counts

    # ------------------------------------------------------------------
    # Counting (read by BadSampleHook in the main process)

    @property
    def num_bad_samples(self) -> int:
        """Bad samples replaced so far, over all dataloader workers."""
        return self._bad_samples.value

    @property
    def num_scored(self) -> int:
        """Samples left for evaluation after the test-mode check."""
        return len(self)

    # ------------------------------------------------------------------
    # Test mode: check the videos when the annotation list is loaded

    def filter_data(self) -> List[dict]:
        """Drop the unusable videos in test mode with ``'replace'``.

        Each excluded video is named in a warning with its reason; a summary
        says how many are scored out of how many.

        Returns:
            list[dict]: The annotations to keep.
        """
        data_list = super().filter_data()
        self.num_listed = len(data_list)
        self.excluded = []
        if not (self.test_mode and
                (self.strict_scoring or
                 (self.on_bad_sample == 'replace' and self.test_precheck))):
            return data_list
        problems = self._precheck([info['filename'] for info in data_list])
        if self.strict_scoring and any(problems):
            bad = [(info['filename'], problem)
                   for info, problem in zip(data_list, problems) if problem]
            listed = '\n'.join(f'  {name}: {problem}' for name, problem in bad)
            raise BadVideoError(
                f'strict_scoring: {len(bad)} of {self.num_listed} videos of '
                f'{self.ann_file} cannot be scored:\n{listed}\nFix or '
                'remove them, or turn strict_scoring off to score the '
                'others.')
        kept = []
        for info, problem in zip(data_list, problems):
            if problem is None:
                kept.append(info)
                continue
            self.excluded.append((info['filename'], str(problem)))
            print_log(
                f'{type(self).__name__} (test mode): excluding '
                f'{info["filename"]} (label {info["label"]}): {problem}',
                logger='current',
                level=logging.WARNING)
        if self.excluded:
            print_log(
                f'{type(self).__name__} (test mode): {len(self.excluded)} of '
                f'{self.num_listed} videos of {self.ann_file} cannot be used '
                f'and are excluded: metrics will score {len(kept)} of '
                f'{self.num_listed} videos.',
                logger='current',
                level=logging.WARNING)
        if not kept:
            raise BadVideoError(
                f'None of the {self.num_listed} videos of {self.ann_file} can '
                f'be used (first: {self.excluded[0][0]}: '
                f'{self.excluded[0][1]}); check data_prefix and the files '
                '(tools/data/check_videos.py).')
        return kept

    def _precheck(self, filenames: List[str]) -> List[Optional[VideoProblem]]:
        num_decode = 3 if self.test_precheck == 'decode' else 0
        fallback = self.decode_transforms
        if fallback:
            decoders = fallback[0].chain.decoders
            timeout = fallback[0].timeout
        else:
            own = find_pipeline_decoder(self.pipeline.transforms)
            decoders, timeout = ([] if own is None else [own]), None

        def check(filename: str) -> Optional[VideoProblem]:
            # Usable if one decoder reads it; otherwise the first decoder's
            # problem, with the others' details.
            problem = file_problem(with_extension(filename))
            if problem is not None or not decoders:
                return problem
            problems = []
            for decoder in decoders:
                problem = probe_with_decoder(decoder, filename,
                                             self.min_frames, self.frame_size,
                                             num_decode, timeout)
                if problem is None:
                    return None
                problems.append(problem)
            if len(problems) == 1:
                return problems[0]
            return VideoProblem(
                problems[0].kind,
                'no decoder reads it: ' + '; '.join(p.detail
                                                    for p in problems))

        # FFmpeg prints a line per broken file to fd 2, without the file
        # name; filter_data's warnings say the same with it.
        with quiet_stderr(), ThreadPoolExecutor(self.precheck_workers) as pool:
            return list(pool.map(check, filenames))

    # ------------------------------------------------------------------
    # Preparing one sample

    def prepare_data(self, idx: int) -> Any:
        """Run the pipeline on sample ``idx``, checking the result.

        The transforms run one by one, as ``Compose`` runs them, so that a
        failure names its transform and the frames can be checked right
        after they are opened and decoded (``min_frames``, ``frame_size``).

        Args:
            idx (int): Index into the (filtered) annotation list.

        Returns:
            The pipeline's output, or None where a transform returned None
            (the base class then draws another sample, as for any dataset).

        Raises:
            BadVideoError: If a transform raises (``DecodeWithFallback``:
                no decoder reads the video) or the sample is invalid.
        """
        results = self.get_data_info(idx)
        filename, label = results.get('filename'), results.get('label')
        counted = decoded = False
        for transform in self.pipeline.transforms:
            try:
                results = transform(results)
            except DecodeFailed as err:
                # DecodeWithFallback: the reason names every decoder.
                raise self._error(filename, label,
                                  self._plain_reason(filename,
                                                     err.reason)) from err
            except Exception as err:
                reason = f'{type(transform).__name__} failed: ' \
                    f'{short_error(err)}'
                raise self._error(filename, label,
                                  self._plain_reason(filename,
                                                     reason)) from err
            if results is None:
                return None
            if not counted and 'total_frames' in results:
                counted = True
                self._check_total(results, filename, label)
            if not decoded and results.get('imgs') is not None:
                decoded = True
                problem = decoded_frames_problem(results, self.frame_size)
                if problem is not None:
                    raise self._error(filename, label, problem)
        if self.input_shape is not None:
            inputs = results.get('inputs') if isinstance(results,
                                                         dict) else None
            shape = None if inputs is None else tuple(inputs.shape)
            if shape != self.input_shape:
                raise self._error(
                    filename, label, f'the packed inputs have shape {shape}, '
                    f'expected input_shape={self.input_shape}')
        return results

    def _plain_reason(self, filename: Any, reason: str) -> str:
        # Decoders word a missing or empty file obscurely ("Error reading 0
        # bytes"); say it plainly when that is the cause.
        problem = file_problem(with_extension(filename)) \
            if isinstance(filename, str) else None
        return reason if problem is None else f'{problem} ({reason})'

    def _check_total(self, results: dict, filename: Any, label: Any) -> None:
        total = results['total_frames']
        if total < self.min_frames:
            raise self._error(
                filename, label, f'the video has {total} frame(s), fewer '
                f'than min_frames={self.min_frames}')

    def _error(self, filename: str, label: Any, reason: str) -> BadVideoError:
        return BadVideoError(
            f'Bad video {filename} (label {label}): {reason}',
            filename=filename,
            reason=reason,
            label=label)

    def __getitem__(self, idx: int) -> Any:
        """Sample ``idx`` after the pipeline, or a replacement (see the class
        docstring).

        Args:
            idx (int): Index into the annotation list.

        Returns:
            The pipeline's output for ``idx`` or, in training with
            ``'replace'``, for another index when ``idx`` is bad.
        """
        if self.on_bad_sample == 'raise' or self.test_mode:
            try:
                return super().__getitem__(idx)
            except BadVideoError as err:
                if self.test_mode and self.on_bad_sample == 'replace':
                    # The load-time check passed it, so the file is broken
                    # beyond what that check looks at.
                    raise BadVideoError(
                        f'{err} (it passed the load-time check '
                        f'test_precheck={self.test_precheck!r}; '
                        "test_precheck='decode' or "
                        'tools/data/check_videos.py find such files)',
                        err.filename, err.reason, err.label) from err
                raise
        if not self._fully_initialized:
            self.full_init()
        failures: List[BadVideoError] = []
        for _ in range(self.max_refetch + 1):
            try:
                data = self.prepare_data(idx)
            except BadVideoError as err:
                failures.append(err)
                self._record(err)
            else:
                if data is not None:
                    return data
            # The replacement comes with its own annotation (label
            # included): only the index changes.
            idx = self._rand_another()
        raise BadVideoError(
            f'{len(failures)} bad samples in a row (max_refetch='
            f'{self.max_refetch}); the data root, the files or the pipeline '
            f'are broken. Last: {failures[-1] if failures else "none"}')

    def _record(self, err: BadVideoError) -> None:
        number, process = self._bad_samples.add(1)
        # The number makes every message unique: MMEngine's logger drops a
        # warning identical to an earlier one, and the same file can be met
        # (and replaced) several times.
        print_log(
            f'{type(self).__name__}: {err}; replaced by another random '
            f'sample with its own label (bad sample {number} of {process}).',
            logger='current',
            level=logging.WARNING)
        if self.bad_sample_file:
            try:
                # One short line per write in append mode: lines from
                # several workers do not interleave.
                with open(self.bad_sample_file, 'a') as f:
                    f.write(f'{err.filename}\t{err.label}\t{err.reason}\n')
            except OSError as io_err:
                print_log(
                    f'cannot append to {self.bad_sample_file}: {io_err}',
                    logger='current',
                    level=logging.WARNING)
