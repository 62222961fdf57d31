"""Token reorganisation of EViT (Liang et al., "Not All Patches are What You
Need: Expediting Vision Transformers via Token Reorganizations", ICLR 2022,
sec. 3).

EViT keeps the ``k`` tokens the CLS token attends to most ("attentive"
tokens) and fuses all the others into one token, a weighted average with
their CLS attention as weights. The backbone hands the CLS attention to the
merger (see :mod:`mmaction_sttm.models.mergers.base`);
:func:`attentiveness` is the cosine score kept as an option.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .groups import rank_of_kept

FUSE_WEIGHTS = ('attention', 'size')


def attentiveness(x: Tensor, ref: Optional[Tensor] = None) -> Tensor:
    """Cosine similarity of every token to the reference token.

    Args:
        x (Tensor): Tokens ``(B, L, D)``.
        ref (Tensor, optional): Reference ``(B, D)``, the CLS token; the mean
            token if None.

    Returns:
        Tensor: ``(B, L)`` in ``[-1, 1]``.
    """
    if ref is None:
        ref = x.mean(dim=1)
    return torch.einsum('bld,bd->bl', F.normalize(x, dim=-1),
                        F.normalize(ref, dim=-1))


@torch.no_grad()
def keep_and_fuse(scores: Tensor,
                  sizes: Tensor,
                  num_keep: int,
                  fuse_weights: str = 'attention',
                  tau: float = 0.1,
                  probabilities: bool = False) -> Tuple[Tensor, Tensor]:
    """Groups and weights of one EViT step.

    Kept tokens are their own groups ``0 .. k-1`` in source order; all the
    others form group ``k``. Inside the fused group a token weighs
    ``size * exp(score / tau)`` (``'attention'``: a softmax attention of the
    reference over the tokens, where a token of size ``s`` counts ``s``
    times, as under proportional attention) or ``size`` (``'size'``: a plain
    size-weighted mean, as ToMe averages). EViT sums with unnormalised
    attention weights; normalising keeps the fused token a convex
    combination, at the scale of the tokens it replaces. When the scores
    are attention probabilities themselves (``probabilities=True``, EViT's
    CLS attention), the ``'attention'`` weights are the scores.

    Args:
        scores (Tensor): Attentiveness ``(B, L)``.
        sizes (Tensor): Token sizes ``(B, L)``.
        num_keep (int): ``k``, at most ``L - 2`` (so that at least two tokens
            are fused).
        fuse_weights (str): ``'attention'`` or ``'size'``.
        tau (float): Temperature of the attention weights.
        probabilities (bool): ``scores`` are attention probabilities.

    Returns:
        tuple[Tensor, Tensor]: Group of each token ``(B, L)`` in
        ``[0, k]`` and its weight ``(B, L)``.
    """
    if fuse_weights not in FUSE_WEIGHTS:
        raise ValueError(f'fuse_weights must be one of {FUSE_WEIGHTS}, got '
                         f'{fuse_weights!r}')
    batch, length = scores.shape
    num_keep = int(num_keep)
    top = scores.topk(num_keep, dim=1, sorted=False).indices
    keep = torch.zeros(
        batch, int(length), dtype=torch.bool, device=scores.device)
    # A tensor source: jit tracing has no scatter_ for a bool scalar.
    keep.scatter_(1, top, torch.ones_like(top, dtype=torch.bool))
    group = torch.where(keep, rank_of_kept(keep),
                        torch.full_like(top[:, :1], num_keep))
    if fuse_weights == 'size':
        weights = sizes
    elif probabilities:
        # Softmax probabilities can underflow to zero in half precision;
        # the floor keeps every fused group's weight positive.
        tiny = torch.finfo(torch.float32).tiny
        weights = scores.float().clamp_min(tiny).to(sizes.dtype)
    else:
        # Subtract the largest fused score so the largest weight is exp(0):
        # no overflow for small tau, and the fused group's weights never
        # all underflow to zero.
        fused = scores.float().masked_fill(keep, float('-inf'))
        top_fused = fused.max(dim=1, keepdim=True).values
        weights = sizes * ((fused - top_fused) / tau).exp().to(sizes.dtype)
    # Kept tokens are alone in their group: any positive weight returns them.
    weights = torch.where(keep, torch.ones_like(weights), weights)
    return group, weights
