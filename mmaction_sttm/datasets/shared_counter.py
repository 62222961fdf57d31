"""A count that dataloader worker processes add to and the main process
reads: bad samples replaced by
:class:`~mmaction_sttm.datasets.RobustVideoDataset`, samples served by each
decoder of :class:`~mmaction_sttm.datasets.DecodeWithFallback`."""
import multiprocessing
from typing import Tuple

__all__ = ['SharedCounter']


class SharedCounter:
    """A count that dataloader worker processes add to and the main process
    reads.

    One shared-memory slot per process (slot 0 is the main process, slot
    ``i + 1`` dataloader worker ``i``), so no process ever writes another's
    slot and no lock is needed; the count is the sum. Create it in the main
    process before any worker starts (with the dataset or its pipeline):
    forked workers inherit the memory and spawned workers receive it while
    being spawned.
    """

    SLOTS = 1024

    def __init__(self) -> None:
        self._slots = multiprocessing.RawArray('q', self.SLOTS)

    def add(self, amount: int = 1) -> Tuple[int, str]:
        """Add ``amount`` in the calling process's slot.

        Args:
            amount (int): What to add. Defaults to 1.

        Returns:
            tuple[int, str]: The slot's new count and the process it counts
            (``'the main process'`` or ``'dataloader worker i'``).
        """
        from torch.utils.data import get_worker_info
        info = get_worker_info()
        slot = 0 if info is None else 1 + info.id % (self.SLOTS - 1)
        self._slots[slot] += amount
        process = 'the main process' if info is None else \
            f'dataloader worker {info.id}'
        return int(self._slots[slot]), process

    @property
    def value(self) -> int:
        """The total over all processes."""
        return int(sum(self._slots))

    def __deepcopy__(self, memo: dict) -> 'SharedCounter':
        # ``BaseDataset.get_subset`` deep-copies the dataset (and its
        # pipeline); shared memory cannot be copied, and what a subset
        # counts belongs to the same run, so copies share the count.
        return self
