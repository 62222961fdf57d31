"""The explicit value that travels through a merging backbone.

A backbone keeps its patch tokens, their position (motion) features, their
sizes and, when asked for, their sources in one :class:`Tokens` value and
hands it to each merge, which returns a new one. Nothing about merging is kept
as hidden state on modules.
"""
from dataclasses import dataclass, replace
from typing import Optional

from torch import Tensor


@dataclass(frozen=True)
class Tokens:
    """Patch tokens of a batch of clips, without the CLS token.

    Args:
        x (Tensor): Tokens ``(B, L, D)``. While ``frames`` is set they are
            frame-major: ``L = frames * per_frame``.
        pos (Tensor): Position / motion features ``E`` ``(B or 1, L, D)``.
        sizes (Tensor, optional): How many input patches each token stands
            for, ``(B, L)``. None means all ones (before the first merge).
        frames (int, optional): Number of frame groups while tokens are still
            grouped per frame (spatial merges keep the grouping); None after a
            spatio-temporal merge.
        sources (Tensor, optional): Soft map from the input patches to the
            current tokens ``(B, L0, L)`` (rows sum to one); only tracked when
            asked for, for visualisation.
    """
    x: Tensor
    pos: Tensor
    sizes: Optional[Tensor] = None
    frames: Optional[int] = None
    sources: Optional[Tensor] = None

    @property
    def per_frame(self) -> int:
        """Tokens per frame group (all tokens once frames are merged)."""
        return self.x.shape[1] // (self.frames or 1)

    def replace(self, **changes) -> 'Tokens':
        """Return a copy with the given fields replaced."""
        return replace(self, **changes)
