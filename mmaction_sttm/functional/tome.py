"""Bipartite soft matching of ToMe (Bolya et al., "Token Merging: Your ViT
but Faster", ICLR 2023, sec. 3).

The tokens are split alternately into two sets ``A`` (even positions) and
``B`` (odd positions). Each ``A`` token is joined to its most similar ``B``
token (cosine similarity), the ``r`` most similar of these edges are kept,
and every ``B`` token merges with the ``A`` tokens that chose it. Because
each removed token is an ``A`` token, one step removes at most
``|A| = ceil(L / 2)`` tokens.

ToMe measures similarity on the attention keys (mean over heads) of the
block before the merge; the caller passes them (or the tokens) as
``metric``.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .groups import active, descending, rank_of_kept


def max_removable(num_tokens: int) -> int:
    """Most tokens one bipartite step can remove: ``|A| = ceil(L / 2)``,
    leaving ``|B| = floor(L / 2)`` tokens."""
    num_tokens = int(num_tokens)
    return (num_tokens + 1) // 2 if num_tokens > 1 else 0


@torch.no_grad()
def bipartite_soft_matching(metric: Tensor,
                            num_remove,
                            valid: Optional[Tensor] = None) -> Tensor:
    """Group index of each token after one ToMe step (sec. 3, "Bipartite
    Soft Matching").

    Outputs keep the source order of their representative token (the ``B``
    token, or the unmerged ``A`` token), unlike ToMe's ``[A, B]`` layout, so
    a later merge that pools neighbours still sees neighbours.

    Args:
        metric (Tensor): Similarity features ``(B, L, C)``.
        num_remove (int | Tensor): ``r``, tokens to remove; at most
            :func:`max_removable` ``(L)``; or ``(B,)``, one per video.
        valid (Tensor, optional): ``(B, L)`` bool, False for padding (at
            the end of each row), which is never matched.

    Returns:
        Tensor: ``(B, L)`` long, the output index of every input token, in
        ``[0, n - r)`` for a video's ``n`` real tokens.
    """
    return bipartite_plan(metric, num_remove, valid)[0]


@torch.no_grad()
def bipartite_plan(metric: Tensor,
                   num_remove,
                   valid: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """:func:`bipartite_soft_matching`'s groups and which tokens were
    merged into another one (vid-TLDR weighs those).

    Args:
        metric (Tensor): Similarity features ``(B, L, C)``.
        num_remove (int | Tensor): ``r``, at most :func:`max_removable`
            ``(L)``; or ``(B,)``, one per video (of its real tokens).
        valid (Tensor, optional): ``(B, L)`` bool, False for padding.

    Returns:
        tuple[Tensor, Tensor]: The group index ``(B, L)`` and the mask
        ``(B, L)`` of the ``r`` removed ``A`` tokens.
    """
    batch, length, _ = metric.shape
    length = int(length)
    device = metric.device
    positions = torch.arange(length, device=device).expand(batch, -1)
    if not torch.is_tensor(num_remove):
        num_remove = int(num_remove)
        if num_remove > max_removable(length):
            raise ValueError(f'one bipartite step removes at most '
                             f'{max_removable(length)} of {length} tokens, '
                             f'asked for {num_remove}')
        if num_remove <= 0:
            return positions.clone(), torch.zeros(
                batch, length, dtype=torch.bool, device=device)
    num_remove = torch.as_tensor(num_remove, device=device).expand(batch)
    if valid is None:
        valid = torch.ones(batch, length, dtype=torch.bool, device=device)
    metric = F.normalize(metric.float(), dim=-1)
    set_a, set_b = metric[:, ::2], metric[:, 1::2]
    scores = torch.bmm(set_a, set_b.transpose(1, 2))
    # Padding is never a destination, and never a source (its best match
    # is -inf, and it sorts after every real token).
    scores = scores.masked_fill(~valid[:, None, 1::2], float('-inf'))
    node_max, node_idx = scores.max(dim=-1)
    # Stable sort: equal similarities resolve by position, so the result
    # never depends on the rest of the batch.
    order = descending(node_max, valid[:, ::2])
    # At most ceil(L / 2) sources; each video uses its first r.
    src_a = order
    src = 2 * src_a
    dst = 2 * node_idx.gather(1, src_a) + 1
    return merge_into(src, dst, length, active(num_remove, src.shape[1]))


def merge_into(src: Tensor,
               dst: Tensor,
               length: int,
               used: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Groups when every token ``src[:, i]`` joins token ``dst[:, i]`` (a
    token that stays) and all other tokens stay alone.

    Args:
        src (Tensor): ``(B, r)`` indices of the removed tokens.
        dst (Tensor): ``(B, r)`` indices of the tokens they join.
        length (int): ``L``.
        used (Tensor, optional): ``(B, r)`` bool, which pairs count (a
            video's first ``r_b``); all if None.

    Returns:
        tuple[Tensor, Tensor]: The group index ``(B, L)`` in ``[0, L - r)``
        (outputs in the source order of the tokens that stay) and the mask
        ``(B, L)`` of the removed tokens.
    """
    batch = src.shape[0]
    positions = torch.arange(length, device=src.device).expand(batch, -1)
    # Tensor (not Python bool) sources: jit tracing, which the FLOP counter
    # uses, has no scatter_ overload for a bool scalar.
    keep = torch.ones(batch, length, dtype=torch.bool, device=src.device)
    if used is None:
        keep.scatter_(1, src, torch.zeros_like(src, dtype=torch.bool))
        target = positions.clone().scatter_(1, src, dst)
    else:
        keep.scatter_(1, src, ~used)
        target = positions.clone().scatter_(1, src,
                                            torch.where(used, dst, src))
    return rank_of_kept(keep).gather(1, target), ~keep
