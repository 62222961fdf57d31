"""The explicit value that travels through a merging backbone.

A backbone keeps its patch tokens, their position (motion) features, their
sizes and, when asked for, their sources in one :class:`Tokens` value and
hands it to each merge, which returns a new one. Nothing about merging is kept
as hidden state on modules.
"""
from dataclasses import dataclass, replace
from typing import Optional

import torch
from torch import Tensor


@dataclass(frozen=True)
class Tokens:
    """Patch tokens of a batch of clips, without the CLS token.

    Args:
        x (Tensor): Tokens ``(B, L, D)``. While ``frames`` is set they are
            frame-major: ``L = frames * per_frame``.
        pos (Tensor): Position / motion features ``E`` ``(B or 1, L, D)``.
        sizes (Tensor): How many input patches each token stands for,
            ``(B, L)``; ones for the patches themselves.
        frames (int, optional): Number of frame groups while tokens are still
            grouped per frame (spatial merges keep the grouping); None after a
            spatio-temporal merge.
        on_grid (bool): Whether the tokens are still the input patches in
            their patch-grid order (no merge has run yet). Defaults to False.
        sources (Tensor, optional): Soft map from the input patches to the
            current tokens ``(B, L0, L)`` (rows sum to one); only tracked when
            asked for, for visualisation.
        assign (Tensor, optional): The last merge's row-stochastic map from
            its input tokens to these ``(B, L_in, L)``; set with ``sources``.
        counts (Tensor, optional): Real tokens per video ``(B,)`` when
            videos have different numbers of tokens (after a content-adaptive
            reducer such as RLT): video ``b``'s first ``counts[b]`` tokens
            are real, the rest padding with size zero (so that size-weighted
            means and ``log(size)`` attention biases leave them out). None
            when every video has all ``L`` tokens. Every merger runs on the
            whole padded batch, each video on its real tokens
            (:class:`~mmaction_sttm.models.mergers.base.Merger`), and hands
            on the new counts.
    """
    x: Tensor
    pos: Tensor
    sizes: Tensor
    frames: Optional[int] = None
    on_grid: bool = False
    sources: Optional[Tensor] = None
    assign: Optional[Tensor] = None
    counts: Optional[Tensor] = None

    @classmethod
    def from_patches(cls,
                     x: Tensor,
                     pos: Tensor,
                     frames: int,
                     track_sources: bool = False) -> 'Tokens':
        """The embedded patches of a clip: sizes one, on the patch grid,
        and (when tracked) each patch its own source.

        Args:
            x (Tensor): Patch tokens ``(B, L, D)``, frame-major.
            pos (Tensor): Their position features ``(B or 1, L, D)``.
            frames (int): Frame groups (``T``, or ``T / tubelet``).
            track_sources (bool): Start a source map. Defaults to False.
        """
        batch, length = x.shape[:2]
        sources = None
        if track_sources:
            sources = torch.eye(
                length, dtype=x.dtype, device=x.device).expand(batch, -1, -1)
        return cls(x, pos, x.new_ones(batch, length), frames, True, sources)

    @property
    def per_frame(self) -> int:
        """Tokens per frame group (all tokens once frames are merged)."""
        return self.x.shape[1] // (self.frames or 1)

    def valid(self) -> Tensor:
        """``(B, L)`` bool, True for real tokens (all True without
        :attr:`counts`)."""
        batch, length = self.x.shape[:2]
        if self.counts is None:
            return self.x.new_ones(batch, length, dtype=torch.bool)
        index = torch.arange(length, device=self.x.device)
        return index[None] < self.counts[:, None]

    def lengths(self) -> Tensor:
        """``(B,)`` long, each video's number of real tokens
        (:attr:`counts`, or ``L`` for all)."""
        if self.counts is not None:
            return self.counts
        batch, length = self.x.shape[:2]
        return torch.full((batch, ),
                          length,
                          dtype=torch.long,
                          device=self.x.device)

    def replace(self, **changes) -> 'Tokens':
        """Return a copy with the given fields replaced."""
        return replace(self, **changes)
