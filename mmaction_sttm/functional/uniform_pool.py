"""Uniform pooling: merge fixed groups of neighbouring tokens.

The content-blind counterpart of STTM, as the grid pooling of HAT-Net or the
patch merging of (Video) Swin Transformer (paper sec. 2.4): every output
averages a fixed block of neighbours, whatever the tokens contain. Groups
are non-overlapping and every input belongs to exactly one, like adaptive
average pooling, so the output count can be any ``L' <= L``:

- on a square ``S x S`` patch grid, a ``h x w`` grid of cells
  (``h * w = L'``, as close to the grid's aspect as possible) where token
  ``(i, j)`` joins cell ``(floor(i h / S), floor(j w / S))``;
- otherwise (or when ``L'`` has no such factorisation), ``L'`` runs of
  consecutive tokens: token ``i`` joins group ``floor(i L' / L)``.
"""
import math
from typing import Optional, Tuple

import torch
from torch import Tensor


def grid_factors(num_tokens: int,
                 num_out: int) -> Optional[Tuple[int, int, int]]:
    """Side ``S`` of a square grid of ``num_tokens`` and the cell grid
    ``(h, w)`` with ``h * w = num_out``, ``h, w <= S``, ``h <= w``, closest
    to square; None if ``num_tokens`` is not square or no factorisation
    fits."""
    side = math.isqrt(int(num_tokens))
    if side * side != num_tokens or side < 2:
        return None
    best = None
    for rows in range(1, math.isqrt(num_out) + 1):
        if num_out % rows == 0 and num_out // rows <= side:
            best = (side, rows, num_out // rows)
    return best


def pool_groups(num_tokens: int,
                num_out: int,
                grid: bool,
                device: Optional[torch.device] = None) -> Tensor:
    """Group index of every token (the same for every sample).

    Args:
        num_tokens (int): ``L``.
        num_out (int): ``L'``, at most ``L``.
        grid (bool): Use the 2D grid cells when ``L`` is a square grid.
        device (torch.device, optional): Device of the result.

    Returns:
        Tensor: ``(L,)`` long in ``[0, L')``; every group is non-empty.
    """
    num_tokens, num_out = int(num_tokens), int(num_out)
    if not 1 <= num_out <= num_tokens:
        raise ValueError(f'cannot pool {num_tokens} tokens into {num_out}')
    factors = grid_factors(num_tokens, num_out) if grid else None
    if factors is None:
        return torch.arange(num_tokens, device=device) * num_out // num_tokens
    side, rows, cols = factors
    coords = torch.arange(side, device=device)
    cell_r = coords * rows // side
    cell_c = coords * cols // side
    return (cell_r[:, None] * cols + cell_c[None, :]).reshape(-1)
