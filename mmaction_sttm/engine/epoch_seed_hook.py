"""Per-epoch seeding, so that a resumed run repeats the run it continues.

MMEngine seeds the random number generators once, when the Runner is built,
and does not save their states in checkpoints. A run resumed from the
checkpoint of epoch ``e`` therefore trains epoch ``e + 1`` with other random
numbers (dropout, drop path, random crops, random token drops) than the
uninterrupted run did, and ends with other weights. Its dataloader workers
are also seeded with the same numbers in every epoch, so a random crop
repeats from one epoch to the next.

:class:`EpochSeedHook` makes every random number of a training epoch a
function of ``(seed, epoch)`` only: at the start of each epoch it reseeds
Python, NumPy and torch in the main process, gives the dataloader's workers
seeds derived from the same pair, and restarts persistent workers, whose
generators could not be reseeded from outside. Whatever ran before the epoch
(model building, validation, an interruption) no longer matters.
"""
import random
from functools import partial
from typing import Optional

import numpy as np
import torch
from mmaction.registry import HOOKS
from mmengine.dataset.utils import worker_init_fn as default_worker_init_fn
from mmengine.dist import get_rank
from mmengine.hooks import Hook


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one training epoch.

    Args:
        seed (int): The run's seed (``runner.seed``).
        epoch (int): Zero-based epoch index.

    Returns:
        int: A 31-bit seed, well mixed over ``(seed, epoch)`` pairs.
    """
    state = np.random.SeedSequence([int(seed) % 2**32, int(epoch)])
    return int(state.generate_state(1, dtype=np.uint32)[0] >> 1)


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Reseed every random number generator at the start of each epoch.

    Registered in the project's default runtime config::

        custom_hooks = [dict(type='EpochSeedHook')]

    With it and ``--deterministic``, a run killed at any point and continued
    with ``--resume`` ends with the same weights and metrics as a run that
    was never interrupted (``tests/tools/test_interruption.py``).

    Works with MMEngine's epoch-based loop and ``DefaultSampler``; the
    sampler's own seed is set to the run's seed, which a resumed run reads
    from its checkpoint (so this also holds with ``seed=None``), except with
    ``diff_rank_seed=True``, whose samplers draw a fresh shared seed.

    Args:
        restart_workers (bool): Restart persistent dataloader workers at the
            start of every epoch so that they get the epoch's seeds. Costs
            one worker start-up per epoch (a fork). If False, persistent
            workers keep their generators across epochs and a resumed run
            draws other random crops than the uninterrupted one. Defaults to
            True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, restart_workers: bool = True) -> None:
        if not isinstance(restart_workers, bool):
            raise TypeError('EpochSeedHook: restart_workers must be a bool, '
                            f'got {restart_workers!r}')
        self.restart_workers = restart_workers

    def before_train_epoch(self, runner) -> None:
        seed = epoch_seed(runner.seed, runner.epoch)
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)  # all devices
        loader = runner.train_dataloader
        if not runner._randomness_cfg.get('diff_rank_seed', False):
            sampler = getattr(loader, 'sampler', None)
            if hasattr(sampler, 'seed'):
                sampler.seed = runner.seed
        if not isinstance(loader, torch.utils.data.DataLoader):
            return
        if loader.num_workers > 0:
            loader.worker_init_fn = partial(
                default_worker_init_fn,
                num_workers=loader.num_workers,
                rank=get_rank(),
                seed=seed)
        if loader.persistent_workers and self.restart_workers:
            _stop_workers(loader)


def _stop_workers(loader: torch.utils.data.DataLoader) -> None:
    """Shut down a persistent loader's workers; the next ``iter`` starts
    new ones (with the current ``worker_init_fn``)."""
    iterator: Optional[object] = getattr(loader, '_iterator', None)
    if iterator is not None:
        iterator._shutdown_workers()
        loader._iterator = None
