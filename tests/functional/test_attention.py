"""The packed attention kernels: one call for the whole batch, each video
attending to its own rows only, equal to attention on each video alone."""
import pytest
import torch
import torch.nn.functional as F

from mmaction_sttm.functional.attention import (KERNELS, PACKED_KERNELS,
                                                PackedBias, Packing, attention,
                                                available, length_buckets,
                                                padding_bias,
                                                proportional_bias)

HEADS, DIM = 2, 8
LENGTHS = [5, 9, 1, 7]


def _packed(weighted: bool, kernel: str):
    """Packed queries, keys and values ``(1, H, n, d)``, their packing, and
    each video's own ``(q, k, v, key bias)``."""
    g = torch.Generator().manual_seed(0)
    longest = max(LENGTHS)
    counts = torch.tensor(LENGTHS)
    rows = torch.arange(longest)[None] < counts[:, None]
    if weighted:  # proportional attention: log(size), padding size zero
        sizes = torch.randint(1, 4, rows.shape, generator=g) * rows
        bias = proportional_bias(sizes.float(), False, torch.float32)
    else:
        bias = padding_bias(rows, False, torch.float32)
    packing = Packing(rows, bias, weighted, kernel)
    n = sum(LENGTHS)
    q, k, v = (torch.randn(1, HEADS, n, DIM, generator=g) for _ in range(3))
    alone = []
    start = 0
    for b, length in enumerate(LENGTHS):
        part = slice(start, start + length)
        alone.append(
            (q[..., part, :], k[..., part, :], v[...,
                                                 part, :], bias[b:b + 1,
                                                                ..., :length]))
        start += length
    return q, k, v, packing, alone


@pytest.mark.parametrize('weighted', [False, True])
@pytest.mark.parametrize('kernel', KERNELS)
def test_every_kernel_equals_each_video_alone(kernel, weighted):
    if not available(kernel):
        pytest.skip(f'{kernel} needs a newer torch')
    q, k, v, packing, alone = _packed(weighted, kernel)
    out = attention(q, k, v, PackedBias(packing), scale=0.3)
    expected = torch.cat([
        F.scaled_dot_product_attention(qi, ki, vi, attn_mask=bi, scale=0.3)
        for qi, ki, vi, bi in alone
    ],
                         dim=-2)
    assert out.shape == q.shape
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_the_device_kernel_is_named_with_its_reason():
    kernel, reason = PACKED_KERNELS['cpu']
    assert kernel in KERNELS and 'ms' in reason  # a measured reason
    rows = torch.ones(2, 3, dtype=torch.bool)
    assert Packing(rows, padding_bias(rows, False,
                                      torch.float32)).kernel == kernel


def test_an_unknown_kernel_is_named():
    rows = torch.ones(2, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="kernel must be one of .*'sparse'"):
        Packing(rows, padding_bias(rows, False, torch.float32), False,
                'sparse')


@pytest.mark.parametrize(
    'lengths, most, groups',
    [
        ([7, 7, 7, 7], 4, [(0, 4)]),
        ([3, 3, 3, 10, 10, 10], 4, [(0, 3), (3, 6)]),
        ([3, 3, 3, 10, 10, 10], 1, [(0, 6)]),
        ([1, 4, 9, 16], 4, [(0, 2), (2, 3), (3, 4)]),  # 369 vs 354: within 5%
    ])
def test_buckets_are_the_fewest_near_the_least_cost(lengths, most, groups):
    assert length_buckets(lengths, most) == groups
