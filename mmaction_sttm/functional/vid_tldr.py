"""vid-TLDR: training-free token merging for video transformers (Choi et
al., "vid-TLDR: Training Free Token merging for Light-weight Video
Transformer", CVPR 2024, sec. 3).

A token's *saliency* comes from how sharp its attention is:
``sum_j a_ij log a_ij`` of the head-mean attention (the negative entropy;
the backbone gives it as ``sharpness``). It is min-max normalised; tokens
below the mean are background and get 0 ("background removing"); the rest
are shifted by the mean and scaled to a maximum of 1 ("foreground
sharpening"). The merge is ToMe's bipartite matching, but a token merged
into another one weighs ``size * saliency``, in the average and in the
merged size alike: a background token merged away is dropped, size and
all.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from .tome import bipartite_plan


def saliency(sharpness: Tensor, valid: Optional[Tensor] = None) -> Tensor:
    """vid-TLDR's saliency of every token from its attention sharpness.

    Args:
        sharpness (Tensor): ``sum_j a_ij log a_ij`` per token ``(B, L)``.

    Returns:
        Tensor: ``(B, L)`` float32 in ``[0, 1]``, 0 on the background.
    """
    tiny = torch.finfo(torch.float32).tiny
    score = sharpness.float()
    if valid is None:
        valid = torch.ones_like(score, dtype=torch.bool)
    real = valid.float()

    def low(v: Tensor) -> Tensor:
        return v.masked_fill(~valid, float('inf')).amin(dim=1, keepdim=True)

    def high(v: Tensor) -> Tensor:
        return v.masked_fill(~valid, float('-inf')).amax(dim=1, keepdim=True)

    score = score - low(score)
    score = score / high(score).clamp_min(tiny)
    mean = (score * real).sum(
        dim=1, keepdim=True) / real.sum(
            dim=1, keepdim=True).clamp_min(1)
    background = score < mean
    score = score - mean
    score = score / high(score).clamp_min(tiny)
    return score.masked_fill(background | ~valid, 0.0)


@torch.no_grad()
def saliency_matching(metric: Tensor,
                      sharpness: Tensor,
                      sizes: Tensor,
                      num_remove,
                      valid: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Groups and weights of one vid-TLDR step.

    Args:
        metric (Tensor): Matching features ``(B, L, C)``.
        sharpness (Tensor): Attention sharpness ``(B, L)``.
        sizes (Tensor): Token sizes ``(B, L)``.
        num_remove (int): ``r``, at most ``ceil(L / 2)``.

    Returns:
        tuple[Tensor, Tensor]: The group index ``(B, L)`` and the weight
        ``(B, L)`` of every token: its size, times its saliency if it was
        merged into another token.
    """
    group, removed = bipartite_plan(metric, num_remove, valid)
    scale = torch.where(removed, saliency(sharpness, valid),
                        torch.ones_like(sizes, dtype=torch.float32))
    return group, sizes * scale.to(sizes.dtype)
