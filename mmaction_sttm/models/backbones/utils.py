"""Position-embedding resampling shared by the backbones."""
from typing import Tuple

import torch.nn.functional as F
from torch import Tensor


def interpolate_pos_embed(pos: Tensor, old_grid: Tuple[int, int],
                          new_grid: Tuple[int, int]) -> Tensor:
    """Resample a spatial position embedding to another patch grid.

    Args:
        pos (Tensor): ``(1, H0 * W0, D)`` embedding of the training grid.
        old_grid (tuple[int, int]): ``(H0, W0)``.
        new_grid (tuple[int, int]): ``(H, W)`` of the current input.

    Returns:
        Tensor: ``(1, H * W, D)``; ``pos`` itself when the grids match.
    """
    if tuple(old_grid) == tuple(new_grid):
        return pos
    dims = pos.shape[-1]
    grid = pos.reshape(1, *old_grid, dims).permute(0, 3, 1, 2)
    grid = F.interpolate(
        grid, size=tuple(new_grid), mode='bicubic', align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(1, -1, dims)


def interpolate_time_embed(time_embed: Tensor, frames: int) -> Tensor:
    """Resample a temporal embedding ``(1, T0, D)`` to ``frames`` steps
    (linear), as TimeSformer does for clips of another length."""
    if time_embed.shape[1] == frames:
        return time_embed
    out = F.interpolate(
        time_embed.transpose(1, 2), size=frames, mode='linear',
        align_corners=False)
    return out.transpose(1, 2)
