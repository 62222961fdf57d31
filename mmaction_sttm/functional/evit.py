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

from .groups import active, descending, rank_of_kept

FUSE_WEIGHTS = ('attention', 'size')


def attentiveness(x: Tensor,
                  ref: Optional[Tensor] = None,
                  valid: Optional[Tensor] = None) -> Tensor:
    """Cosine similarity of every token to the reference token.

    Args:
        x (Tensor): Tokens ``(B, L, D)``.
        ref (Tensor, optional): Reference ``(B, D)``, the CLS token; the mean
            token if None.
        valid (Tensor, optional): ``(B, L)`` bool, False for padding (left
            out of the mean token).

    Returns:
        Tensor: ``(B, L)`` in ``[-1, 1]``.
    """
    if ref is None:
        ref = real_mean(x, valid)
    return torch.einsum('bld,bd->bl', F.normalize(x, dim=-1),
                        F.normalize(ref, dim=-1))


def real_mean(x: Tensor, valid: Optional[Tensor] = None) -> Tensor:
    """Mean over the tokens ``(B, L, D) -> (B, D)``, padding left out."""
    if valid is None:
        return x.mean(dim=1)
    weights = valid.to(x.dtype).unsqueeze(-1)
    return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1)


@torch.no_grad()
def keep_and_fuse(scores: Tensor,
                  sizes: Tensor,
                  num_keep,
                  fuse_weights: str = 'attention',
                  tau: float = 0.1,
                  probabilities: bool = False,
                  valid: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
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
        num_keep (int | Tensor): ``k``, at most ``L - 2`` (so that at least
            two tokens are fused), or ``(B,)``, one per video.
        fuse_weights (str): ``'attention'`` or ``'size'``.
        tau (float): Temperature of the attention weights.
        probabilities (bool): ``scores`` are attention probabilities.
        valid (Tensor, optional): ``(B, L)`` bool, False for padding, which
            is never kept and joins no group that matters (its group is
            ``num_keep``; its weight zero).

    Returns:
        tuple[Tensor, Tensor]: Group of each token ``(B, L)`` in
        ``[0, k]`` and its weight ``(B, L)``.
    """
    if fuse_weights not in FUSE_WEIGHTS:
        raise ValueError(f'fuse_weights must be one of {FUSE_WEIGHTS}, got '
                         f'{fuse_weights!r}')
    batch, length = scores.shape
    if valid is None:
        valid = torch.ones_like(scores, dtype=torch.bool)
    num_keep = torch.as_tensor(num_keep, device=scores.device).expand(batch)
    # The k most attentive of each video's real tokens (equal scores: the
    # earlier token), as a mask.
    order = descending(scores, valid)
    keep = torch.zeros_like(valid).scatter_(1, order,
                                            active(num_keep, int(length)))
    group = torch.where(keep, rank_of_kept(keep), num_keep[:, None])
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
        fused = scores.float().masked_fill(keep | ~valid, float('-inf'))
        top_fused = fused.max(dim=1, keepdim=True).values
        weights = sizes * ((fused - top_fused) / tau).exp().to(sizes.dtype)
    # Kept tokens are alone in their group: any positive weight returns them.
    weights = torch.where(keep, torch.ones_like(weights), weights)
    weights = weights.masked_fill(~valid, 0)
    return group, weights
