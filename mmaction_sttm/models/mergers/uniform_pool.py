"""Uniform pooling of neighbouring tokens, the content-blind merger."""
from typing import Optional, Tuple

import torch
from torch import Tensor

from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.functional.uniform_pool import pool_groups
from mmaction_sttm.registry import MODELS
from .base import Cues, HardMerger, check_choice

GRIDS = ('auto', 'sequence')


@MODELS.register_module()
class UniformPool(HardMerger):
    """Average fixed, non-overlapping groups of neighbouring tokens.

    ``round(L * (1 - ratio))`` groups, each averaged with size weights, sizes
    summed (grid pooling as in HAT-Net or Video Swin, paper sec. 2.4).
    With ``grid='auto'``, a merge that sees untouched patches whose count is
    a square ``S x S`` pools 2D cells of the patch grid when the output
    count factors into a fitting ``h x w`` grid; every other
    merge pools runs of consecutive tokens (tokens are frame-major, so a run
    holds neighbours of one frame except where it crosses a frame
    boundary). ``grid='sequence'`` always pools runs:
    use it when a spatio-temporal first merge could see a square count by
    chance (e.g. 4 frames of 14 x 14 patches = 28 x 28).

    Args:
        embed_dims (int): Channels ``D``.
        ratio (float): Merge ratio in (0, 1). Defaults to 0.5.
        grid (str): ``'auto'`` or ``'sequence'``. Defaults to ``'auto'``.
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def __init__(self,
                 embed_dims: int,
                 ratio: float = 0.5,
                 grid: str = 'auto',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(embed_dims, ratio, init_cfg)
        self.grid = check_choice(grid, GRIDS, 'grid')

    def assign(self, tokens: Tokens, per_video: Tensor,
               cues: Cues) -> Tuple[Tensor, Optional[Tensor]]:
        x = tokens.x
        batch, length = int(x.shape[0]), int(x.shape[1])
        if self.grid == 'auto' and tokens.on_grid and tokens.counts is None:
            group = pool_groups(length, self.num_outputs(length), True,
                                x.device)
            return group.expand(batch, -1), None
        # Runs of consecutive tokens: token j of a video of n joins run
        # floor(j k / n) (pool_groups' sequence grouping, per video).
        positions = torch.arange(length, device=x.device)
        return torch.div(
            positions * per_video[:, None],
            tokens.lengths()[:, None],
            rounding_mode='floor'), None

    def extra_repr(self) -> str:
        return f'ratio={self.ratio}, grid={self.grid!r}'
