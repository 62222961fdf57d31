"""Hard merges: every input token goes to exactly one output token.

ToMe, EViT, random dropping and uniform pooling all reduce to a *group index*
per input token (which output it joins) and a *weight* per input token (how
much it counts inside its group). These functions apply such an assignment
to features, sizes and source maps with scatter-adds, which cost O(L * D)
memory traffic and no matrix product (a dense one-hot ``(L, L')`` product
would add ``L * L' * D`` multiply-adds per merge and distort FLOP
comparisons with STTM).

Shapes: ``B`` samples, ``L`` input tokens, ``G`` groups (outputs), ``C``
channels.
"""
import torch
from torch import Tensor


def _expand(index: Tensor, channels: int) -> Tensor:
    return index.unsqueeze(-1).expand(-1, -1, channels)


def group_sum(values: Tensor, group: Tensor, num_groups: int) -> Tensor:
    """Sum of the values of each group.

    Args:
        values (Tensor): ``(B, L)`` or ``(B, L, C)``.
        group (Tensor): Group of each token ``(B, L)`` (long, in
            ``[0, num_groups)``).
        num_groups (int): ``G``.

    Returns:
        Tensor: ``(B, G)`` or ``(B, G, C)``.
    """
    num_groups = int(num_groups)
    if values.dim() == 2:
        out = values.new_zeros(values.shape[0], num_groups)
        return out.scatter_add_(1, group, values)
    out = values.new_zeros(values.shape[0], num_groups, values.shape[-1])
    return out.scatter_add_(1, _expand(group, values.shape[-1]), values)


def group_mean(x: Tensor, group: Tensor, num_groups: int,
               weights: Tensor) -> Tensor:
    """Weighted mean of the tokens of each group.

    Every output is a convex combination of its group's inputs, so the
    feature scale is kept (as in ToMe's size-weighted average).

    Args:
        x (Tensor): Tokens ``(B, L, C)``.
        group (Tensor): Group of each token ``(B, L)``.
        num_groups (int): ``G``; a group without a token of positive weight
            comes out zero.
        weights (Tensor): Non-negative weight of each token ``(B, L)``.

    Returns:
        Tensor: ``(B, G, C)``.
    """
    weights = weights.to(x.dtype)
    total = group_sum(x * weights.unsqueeze(-1), group, num_groups)
    norm = group_sum(weights, group, num_groups)
    # An empty group (a padded output slot of a video with fewer outputs
    # than the batch's longest) comes out zero, not 0 / 0.
    tiny = torch.finfo(norm.dtype).tiny
    return total / norm.clamp_min(tiny).unsqueeze(-1)


def group_sources(sources: Tensor, group: Tensor, num_groups: int) -> Tensor:
    """Carry a source map through a hard merge: ``sources @ one_hot(group)``.

    Args:
        sources (Tensor): Soft map from input patches to tokens
            ``(B, L0, L)``, rows summing to one.
        group (Tensor): Group of each token ``(B, L)``.
        num_groups (int): ``G``.

    Returns:
        Tensor: ``(B, L0, G)``; rows still sum to one because the one-hot
        assignment is row-stochastic.
    """
    num_groups = int(num_groups)
    batch, num_src, _ = sources.shape
    out = sources.new_zeros(batch, num_src, num_groups)
    index = group.unsqueeze(1).expand(-1, num_src, -1)
    return out.scatter_add_(2, index, sources)


def rank_of_kept(keep: Tensor) -> Tensor:
    """Output index of each kept token when kept tokens keep their order.

    Args:
        keep (Tensor): Boolean mask ``(B, L)``.

    Returns:
        Tensor: ``(B, L)`` long; for kept tokens their rank among kept ones
        (in source order), meaningless for the others.
    """
    return keep.long().cumsum(dim=1) - 1


def active(per_video: Tensor, width: int) -> Tensor:
    """``(B, width)`` bool, True in the first ``per_video[b]`` slots of row
    ``b``: which of a padded batch's slots (candidates, picks, outputs) are
    real for each video."""
    return torch.arange(int(width), device=per_video.device) \
        < per_video[:, None]


def descending(scores: Tensor, valid: Tensor) -> Tensor:
    """Token indices by decreasing score, equal scores by position, padded
    tokens last: the order a video gets alone, whatever its padding.

    Args:
        scores (Tensor): ``(B, L)``.
        valid (Tensor): ``(B, L)`` bool, False for padding.

    Returns:
        Tensor: ``(B, L)`` long.
    """
    scores = scores.float().masked_fill(~valid, float('-inf'))
    return scores.argsort(dim=1, descending=True, stable=True)
