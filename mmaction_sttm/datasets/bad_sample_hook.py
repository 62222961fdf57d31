"""Reports what :class:`~mmaction_sttm.datasets.RobustVideoDataset` did
with bad videos: replacements per training epoch, how many videos each
validation / test epoch scored out of how many, and per epoch which decoder
of the pipeline's :class:`~mmaction_sttm.datasets.DecodeWithFallback` served
how many samples."""
import os.path as osp
from typing import Dict, List, Optional

import torch
from mmaction.registry import HOOKS
from mmengine.dist import all_reduce, get_dist_info
from mmengine.hooks import Hook

from .robust import RobustVideoDataset

DecoderCounts = Dict[str, int]

__all__ = ['BadSampleHook']


def find_robust_datasets(dataset: object) -> List[RobustVideoDataset]:
    """The :class:`RobustVideoDataset` s in ``dataset`` and its wrappers
    (``RepeatDataset``, ``ClassBalancedDataset``: ``.dataset``;
    ``ConcatDataset``: ``.datasets``)."""
    if isinstance(dataset, RobustVideoDataset):
        return [dataset]
    found: List[RobustVideoDataset] = []
    inner = getattr(dataset, 'dataset', None)
    if inner is not None:
        found += find_robust_datasets(inner)
    for inner in getattr(dataset, 'datasets', None) or ():
        found += find_robust_datasets(inner)
    return found


@HOOKS.register_module()
class BadSampleHook(Hook):
    """Log the bad-sample accounting of :class:`RobustVideoDataset`.

    - After each training epoch: how many bad samples were replaced (summed
      over ranks and dataloader workers), the distinct files this rank met and
      where they are listed (``bad_samples[_rank{r}].txt`` in the run's log
      directory, one ``filename<TAB>label<TAB>reason`` line per replacement).
    - After each validation / test epoch: ``scored: N of M videos`` joins the
      metrics line (MMEngine's ``LoggerHook`` prints it), where ``M - N``
      videos were excluded by the load-time check.
    - After each epoch (training, validation, test): how many samples each
      decoder of the pipeline's ``DecodeWithFallback`` served (the dataset's
      ``decoder_counts``), summed over ranks and dataloader workers, e.g.
      ``samples served per decoder: decord 10, pyav 6 (fallback share
      37.5%)``; nothing for a pipeline without one.

    Harmless without a :class:`RobustVideoDataset` (it then does nothing),
    so it can sit in a default runtime config.

    Args:
        max_bad_fraction (float, optional): Stop training with an error when
            the replaced samples of an epoch exceed this fraction of the
            dataset (a wrong data root or a half-downloaded dataset should
            not train quietly on what is left). None never stops. Defaults to
            None.
        max_listed (int): Most file names listed per epoch in the log (all
            are in the file). Defaults to 10.
    """

    # Before LoggerHook (BELOW_NORMAL), so that its metrics line of the
    # validation / test epoch includes the "scored" entry set here.
    priority = 'NORMAL'

    def __init__(self,
                 max_bad_fraction: Optional[float] = None,
                 max_listed: int = 10) -> None:
        if max_bad_fraction is not None and not 0 <= max_bad_fraction <= 1:
            raise ValueError('max_bad_fraction must be in [0, 1] or None, '
                             f'got {max_bad_fraction!r}')
        self.max_bad_fraction = max_bad_fraction
        self.max_listed = max_listed
        self._epoch_start = 0
        self._decoders_start: Dict[str, DecoderCounts] = {}
        self._file_offset = 0
        self._record_file: Optional[str] = None

    # ------------------------------------------------------------------
    # Training: replacements

    @staticmethod
    def _train_datasets(runner) -> List[RobustVideoDataset]:
        return find_robust_datasets(runner.train_dataloader.dataset)

    def before_train(self, runner) -> None:
        """Point the datasets' record file into the log directory."""
        datasets = self._train_datasets(runner)
        if not datasets:
            return
        rank, world_size = get_dist_info()
        name = 'bad_samples.txt' if world_size == 1 else \
            f'bad_samples_rank{rank}.txt'
        self._record_file = osp.join(runner.log_dir, name)
        # Set before the first epoch creates the dataloader workers, which
        # copy the dataset (persistent ones only once).
        for dataset in datasets:
            dataset.bad_sample_file = self._record_file

    # ------------------------------------------------------------------
    # Decoders: samples served per decoder and epoch

    @staticmethod
    def _decoder_counts(datasets: List[RobustVideoDataset]) -> DecoderCounts:
        counts: DecoderCounts = {}
        for dataset in datasets:
            for name, count in dataset.decoder_counts.items():
                counts[name] = counts.get(name, 0) + count
        return counts

    def _start_decoders(self, mode: str, dataloader) -> None:
        self._decoders_start[mode] = self._decoder_counts(
            find_robust_datasets(dataloader.dataset))

    def _report_decoders(self, runner, mode: str, dataloader) -> None:
        """Log the samples each decoder served since ``_start_decoders``."""
        counts = self._decoder_counts(find_robust_datasets(dataloader.dataset))
        if not counts:
            return
        start = self._decoders_start.get(mode, {})
        names = sorted(counts)
        # Every rank counts its own workers' samples; sum over ranks.
        served = torch.tensor([counts[n] - start.get(n, 0) for n in names],
                              dtype=torch.int64)
        all_reduce(served)
        served = dict(zip(names, served.tolist()))
        # In the order the pipelines try them.
        order = [
            n for d in find_robust_datasets(dataloader.dataset)
            for n in d.decoder_names
        ]
        order = list(dict.fromkeys(order))
        total = sum(served.values())
        first = order[0]
        share = 100.0 * (total - served[first]) / total if total else 0.0
        listed = ', '.join(f'{n} {served[n]}' for n in order)
        when = f'Epoch {runner.epoch + 1}' if mode == 'train' else mode
        runner.logger.info(f'{when}: samples served per decoder: {listed} '
                           f'(fallback share {share:.1f}%).')

    def before_val_epoch(self, runner) -> None:
        """Remember the decoder counts at the start of validation."""
        self._start_decoders('val', runner.val_dataloader)

    def before_test_epoch(self, runner) -> None:
        """Remember the decoder counts at the start of testing."""
        self._start_decoders('test', runner.test_dataloader)

    def before_train_epoch(self, runner) -> None:
        """Remember the counts at the start of the epoch."""
        self._start_decoders('train', runner.train_dataloader)
        self._epoch_start = sum(
            d.num_bad_samples for d in self._train_datasets(runner))
        if self._record_file and osp.isfile(self._record_file):
            self._file_offset = osp.getsize(self._record_file)

    def after_train_epoch(self, runner) -> None:
        """Log the epoch's replacements (and stop if there were too many)."""
        datasets = self._train_datasets(runner)
        if not datasets:
            return
        count = sum(d.num_bad_samples for d in datasets) - self._epoch_start
        # Every rank counts its own workers' replacements; sum over ranks.
        total = torch.tensor(count, dtype=torch.int64)
        all_reduce(total)
        total = int(total.item())
        size = sum(len(d) for d in datasets)
        message = (f'Epoch {runner.epoch + 1}: {total} bad training '
                   f'sample(s) replaced by other random samples '
                   f'(dataset size {size}).')
        files = self._files_this_epoch()
        if files:
            where = ' on this rank' if get_dist_info()[1] > 1 else ''
            listed = ', '.join(
                f'{name} ({reason})'
                for name, reason in list(files.items())[:self.max_listed])
            more = len(files) - self.max_listed
            if more > 0:
                listed += f' and {more} more'
            message += (f' Files{where}: {listed}; all replacements are '
                        f'listed in {self._record_file}.')
        runner.logger.info(message)
        self._report_decoders(runner, 'train', runner.train_dataloader)
        if (self.max_bad_fraction is not None and size
                and total > self.max_bad_fraction * size):
            raise RuntimeError(
                f'{total} bad samples in epoch {runner.epoch + 1} exceed '
                f'max_bad_fraction={self.max_bad_fraction} of the {size} '
                f'samples; see {self._record_file} or run '
                'tools/data/check_videos.py on the annotation list.')

    def _files_this_epoch(self) -> Dict[str, str]:
        """Distinct files (with a reason) appended to the record file since
        the epoch began."""
        if not (self._record_file and osp.isfile(self._record_file)):
            return {}
        with open(self._record_file) as f:
            f.seek(self._file_offset)
            lines = f.read().splitlines()
        files: Dict[str, str] = {}
        for line in lines:
            parts = line.split('\t')
            if len(parts) == 3:
                files.setdefault(parts[0], parts[2])
        return files

    # ------------------------------------------------------------------
    # Validation / test: scored N of M

    def _report_scored(self, runner, mode: str, dataloader) -> None:
        datasets = [
            d for d in find_robust_datasets(dataloader.dataset) if d.test_mode
        ]
        if not datasets:
            return
        scored = sum(d.num_scored for d in datasets)
        listed = sum(d.num_listed for d in datasets)
        # Runtime info with the mode's prefix is printed by LoggerHook in the
        # metrics line of this epoch: "... scored: 98 of 100 videos".
        runner.message_hub.update_info(f'{mode}/scored',
                                       f'{scored} of {listed} videos')
        if scored < listed:
            runner.logger.warning(
                f'{mode}: the metrics score {scored} of {listed} videos; '
                f'{listed - scored} were excluded as '
                'unusable when the annotation list was loaded (listed in '
                'the warnings above).')

    def after_val_epoch(self,
                        runner,
                        metrics: Optional[Dict[str, float]] = None) -> None:
        """Add ``scored: N of M videos`` to the validation metrics line."""
        self._report_scored(runner, 'val', runner.val_dataloader)
        self._report_decoders(runner, 'val', runner.val_dataloader)

    def after_test_epoch(self,
                         runner,
                         metrics: Optional[Dict[str, float]] = None) -> None:
        """Add ``scored: N of M videos`` to the test metrics line."""
        self._report_scored(runner, 'test', runner.test_dataloader)
        self._report_decoders(runner, 'test', runner.test_dataloader)
