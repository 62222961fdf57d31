"""Shared body of the mergers that send every token to one output.

A subclass decides, per merge, which output each input token joins and how
much it weighs there (:meth:`HardMerger.assign`); this class applies that to
the tokens, their position features, their sizes and the source map, so all
hard mergers follow the merger interface of
:class:`~mmaction_sttm.models.sttm.MergeSchedule` in the same way:

- ``forward(x, pos, sizes, ref, sources) -> (y, pos_out, sizes_out,
  sources_out)``;
- sizes add up: an output's size is the sum of its group's sizes;
- the source map stays row-stochastic (``sources @ one_hot(group)``).

The assignment is a function of each sample alone (no randomness at
inference), so results do not depend on the batch. On CUDA, scatter-adds
sum in an arbitrary order, so repeated runs agree to float rounding;
``torch.use_deterministic_algorithms(True)`` makes them bitwise equal.
"""
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor

from mmaction_sttm.merging.groups import (group_mean, group_sources,
                                          group_sum)
from mmaction_sttm.merging.sttm import num_meta_tokens


def check_ratio(ratio: float, field: str = 'ratio') -> float:
    """Return ``ratio`` as a float, or raise ValueError naming ``field``."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) \
            or not 0 < ratio < 1:
        raise ValueError(f'{field} must be a number in (0, 1), got {ratio!r}')
    return float(ratio)


def num_kept(num_tokens: int, ratio: float) -> int:
    """``round(L * (1 - ratio))``, at least 1: STTM's output count (eq. 1),
    which the other mergers share so that one ratio means the same token
    budget for all of them."""
    return num_meta_tokens(int(num_tokens), ratio)


class HardMerger(BaseModule):
    """Base of the parameter-free mergers.

    Args:
        embed_dims (int): Channels ``D`` (unused; part of the interface).
        ratio (float): Merge ratio in (0, 1).
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def __init__(self,
                 embed_dims: int,
                 ratio: float = 0.5,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.embed_dims = embed_dims
        self.ratio = check_ratio(ratio)

    def num_outputs(self, num_tokens: int) -> int:
        """Number of tokens a merge of ``num_tokens`` tokens produces."""
        raise NotImplementedError

    def assign(self, x: Tensor, sizes: Optional[Tensor],
               ref: Optional[Tensor],
               num_out: int) -> Tuple[Tensor, Optional[Tensor]]:
        """Decide one merge.

        Args:
            x (Tensor): Tokens ``(B, L, D)``.
            sizes (Tensor, optional): Token sizes ``(B, L)``; None before the
                first merge (all ones: the tokens are still the patches).
            ref (Tensor, optional): CLS token ``(B, D)``.
            num_out (int): Output count, ``num_outputs(L) < L``.

        Returns:
            tuple[Tensor, Tensor | None]: The group index ``(B, L)`` in
            ``[0, num_out)`` of every token (each group non-empty) and the
            weight ``(B, L)`` of every token inside its group (positive for
            at least one token per group); None weighs tokens by size.
        """
        raise NotImplementedError

    def forward(self,
                x: Tensor,
                pos: Tensor,
                sizes: Optional[Tensor] = None,
                ref: Optional[Tensor] = None,
                sources: Optional[Tensor] = None) -> Tuple[Tensor, ...]:
        """Merge ``L`` tokens into ``num_outputs(L)``.

        Args:
            x (Tensor): Tokens ``(B, L, D)`` without the CLS token.
            pos (Tensor): Position / motion features ``(B or 1, L, D)``.
            sizes (Tensor, optional): Token sizes ``(B, L)``; all ones if
                None.
            ref (Tensor, optional): CLS token ``(B, D)``; mergers that rank
                tokens use the mean token if None.
            sources (Tensor, optional): Soft source map ``(B, L0, L)``.

        Returns:
            tuple[Tensor, ...]: Tokens ``(B, L', D)``, position features
            ``(B, L', D)`` (merged with the same weights), sizes ``(B, L')``
            and the source map ``(B, L0, L')`` (None if not given).
        """
        batch, length, dims = x.shape
        length = int(length)
        num_out = self.num_outputs(length)
        pos = pos.expand(batch, -1, -1)
        if num_out >= length:
            if sizes is None:
                sizes = x.new_ones(batch, length)
            return x, pos, sizes, sources
        group, weights = self.assign(x, sizes, ref, num_out)
        if sizes is None:
            sizes = x.new_ones(batch, length)
        if weights is None:
            weights = sizes
        # One scatter for tokens and positions alike.
        merged = group_mean(
            torch.cat([x, pos.to(x.dtype)], dim=-1), group, num_out, weights)
        y, pos_out = merged.split(int(dims), dim=-1)
        sizes_out = group_sum(sizes, group, num_out)
        if sources is not None:
            sources = group_sources(sources, group, num_out)
        return y, pos_out, sizes_out, sources

    def extra_repr(self) -> str:
        return f'ratio={self.ratio}'

