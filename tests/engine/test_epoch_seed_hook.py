"""EpochSeedHook without a training run (the real runs are in
tests/tools/test_interruption.py)."""
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.dataset import DefaultSampler
from torch.utils.data import DataLoader

from mmaction_sttm.engine import EpochSeedHook, epoch_seed


def _runner(loader, seed=7, epoch=0, diff_rank_seed=False):
    return SimpleNamespace(
        seed=seed,
        epoch=epoch,
        train_dataloader=loader,
        _randomness_cfg=dict(diff_rank_seed=diff_rank_seed))


def _draws():
    return (random.random(), np.random.rand(), torch.rand(1).item())


def test_epoch_seed_is_a_function_of_seed_and_epoch():
    assert epoch_seed(0, 3) == epoch_seed(0, 3)
    seeds = {epoch_seed(s, e) for s in range(5) for e in range(20)}
    assert len(seeds) == 100
    assert all(0 <= s < 2**31 for s in seeds)


def test_every_generator_restarts_from_the_epoch_seed():
    dataset = list(range(8))
    loader = DataLoader(dataset, sampler=DefaultSampler(dataset, seed=1))
    hook = EpochSeedHook()
    hook.before_train_epoch(_runner(loader, epoch=2))
    first = _draws()
    _draws()  # whatever ran in between
    hook.before_train_epoch(_runner(loader, epoch=2))
    assert _draws() == first
    hook.before_train_epoch(_runner(loader, epoch=3))
    assert _draws() != first
    # The sampler follows the run's seed (a resumed run reads it from its
    # checkpoint), unless every rank has its own seed.
    assert loader.sampler.seed == 7
    loader.sampler.seed = 1
    hook.before_train_epoch(_runner(loader, diff_rank_seed=True))
    assert loader.sampler.seed == 1


def _first_batch_seeds(loader, hook, epoch):
    hook.before_train_epoch(_runner(loader, epoch=epoch))
    return next(iter(loader))


class _WorkerDraws(torch.utils.data.Dataset):
    """Each item is a random number drawn in the worker."""

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return np.random.rand()


def test_workers_get_the_epochs_seeds_and_restart():
    loader = DataLoader(
        _WorkerDraws(), batch_size=4, num_workers=1, persistent_workers=True)
    hook = EpochSeedHook()
    a = _first_batch_seeds(loader, hook, 0)
    b = _first_batch_seeds(loader, hook, 1)
    a_again = _first_batch_seeds(loader, hook, 0)
    # Epochs differ (MMEngine alone seeds workers alike in every epoch) and
    # an epoch is the same whatever ran before it (persistent workers are
    # restarted with the epoch's seeds).
    assert not torch.equal(a, b)
    assert torch.equal(a, a_again)


def test_restart_workers_must_be_a_bool():
    with pytest.raises(TypeError, match='restart_workers'):
        EpochSeedHook(restart_workers='yes')
