"""The framework-free parts of the other mergers, on hand-checked cases."""
import pytest
import torch

from mmaction_sttm.functional.groups import (group_mean, group_sources,
                                             group_sum)
from mmaction_sttm.functional.random_drop import (evenly_spaced_per_video,
                                                  nearest_kept,
                                                  random_subset_per_video)
from mmaction_sttm.functional.tome import (bipartite_soft_matching,
                                           max_removable)
from mmaction_sttm.functional.uniform_pool import grid_factors, pool_groups


def test_group_mean_sum_and_sources():
    x = torch.tensor([[[1.], [2.], [3.], [4.]]])
    group = torch.tensor([[0, 0, 1, 1]])
    weights = torch.tensor([[1., 3., 0., 2.]])
    torch.testing.assert_close(
        group_mean(x, group, 2, weights), torch.tensor([[[1.75], [4.]]]))
    torch.testing.assert_close(
        group_sum(weights, group, 2), torch.tensor([[4., 2.]]))
    sources = torch.eye(4)[None]
    torch.testing.assert_close(
        group_sources(sources, group, 2),
        torch.tensor([[[1., 0], [1, 0], [0, 1], [0, 1]]]))


def test_bipartite_matching_limits_and_order():
    assert [max_removable(n) for n in (1, 2, 5, 196)] == [0, 1, 3, 98]
    metric = torch.randn(2, 7, 4)
    with pytest.raises(ValueError, match='at most 4'):
        bipartite_soft_matching(metric, 5)
    group = bipartite_soft_matching(metric, 4)
    # All of A merged: the 3 B tokens remain, each its own group in order.
    assert torch.equal(group[:, 1::2], torch.arange(3).expand(2, 3))
    assert group.max() == 2
    assert torch.equal(
        bipartite_soft_matching(metric, 0),
        torch.arange(7).expand(2, 7))


def test_random_drop_indices():
    # Videos of 10 and 5 tokens in one row of 10 slots: each its picks,
    # then slots past the end (2 L + slot).
    kept = evenly_spaced_per_video(
        torch.tensor([10, 5]), torch.tensor([4, 5]), 10)
    assert kept[0, :4].tolist() == [1, 3, 6, 8]
    assert kept[1, :5].tolist() == [0, 1, 2, 3, 4]
    assert kept[0, 4:].tolist() == [24, 25, 26, 27, 28, 29]
    kept = torch.tensor([[1, 3, 6, 8]])
    # Nearest kept token; ties (2 between 1 and 3, 7 between 6 and 8) go
    # to the earlier one.
    assert nearest_kept(kept, 10).tolist() == [[0, 0, 0, 1, 1, 2, 2, 2, 3, 3]]
    torch.manual_seed(0)
    valid = torch.arange(10)[None] < torch.tensor([[10], [6], [3]])
    subset = random_subset_per_video(valid, torch.tensor([4, 4, 2]))
    assert subset.shape == (3, 10)
    assert (subset.diff(dim=1) > 0).all()
    for row, (n, k) in zip(subset, ((10, 4), (6, 4), (3, 2))):
        assert (row[:k] < n).all() and (row[k:] >= 20).all()


def test_uniform_pool_groups():
    assert grid_factors(196, 98) == (14, 7, 14)
    assert grid_factors(196, 49) == (14, 7, 7)
    assert grid_factors(196, 157) is None  # prime: no grid of cells
    assert grid_factors(98, 49) is None  # not a square grid
    # 4 x 4 grid into 2 x 2 cells.
    assert pool_groups(16, 4, True).reshape(4, 4).tolist() == [[0, 0, 1, 1],
                                                               [0, 0, 1, 1],
                                                               [2, 2, 3, 3],
                                                               [2, 2, 3, 3]]
    # Runs of neighbours otherwise; uneven runs when L' does not divide L.
    assert pool_groups(16, 4,
                       False).tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
    assert pool_groups(7, 3, False).tolist() == [0, 0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError):
        pool_groups(4, 5, False)
