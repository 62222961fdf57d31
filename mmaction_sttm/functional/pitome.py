"""PiToMe: spectrum-preserving token merging by energy score (Tran et al.,
"Accelerating Transformers with Spectrum-Preserving Token Merging", NeurIPS
2024, sec. 3).

Every token gets an *energy*: the mean over all tokens of
``f_m(cos(v_i, v_j))``, where ``f_m(x) = x - m`` above the margin ``m`` and
``alpha * (exp(x - m) - 1)`` below it (an ELU shifted by ``m``). A token
with many close neighbours has a high energy and is redundant; an isolated
token has a low one and carries information of its own. The ``2r`` tokens
of highest energy may merge, the others are protected. The mergeable
tokens, in order of energy, alternate into sets ``A`` and ``B``, and each
``A`` token joins its most similar ``B`` token, so exactly ``r`` tokens go.

The margin falls with depth: ``m = 0.9 - 0.8 * i / depth`` in block ``i``
(0-based), as the authors' code sets it for ViTs.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .groups import active, descending
from .tome import merge_into


def layer_margin(layer: int, depth: int) -> float:
    """PiToMe's margin for a merge on the output of block ``layer``
    (1-based) of ``depth``: ``0.9 - 0.8 * (layer - 1) / depth``."""
    return 0.9 - 0.8 * (int(layer) - 1) / int(depth)


def energy_scores(metric: Tensor,
                  margin: float,
                  alpha: float = 1.0,
                  valid: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Energy of every token and the cosine similarities it comes from.

    Args:
        metric (Tensor): Features ``(B, L, C)`` (the keys, mean over heads).
        margin (float): ``m``.
        alpha (float): Slope of the ELU below the margin.
        valid (Tensor, optional): ``(B, L)`` bool, False for padding: the
            energy is the mean over the real tokens only.

    Returns:
        tuple[Tensor, Tensor]: Energy ``(B, L)`` and cosine similarities
        ``(B, L, L)``, float32.
    """
    metric = F.normalize(metric.float(), dim=-1)
    sim = torch.bmm(metric, metric.transpose(1, 2))
    energy = F.elu(sim - margin, alpha=alpha)
    if valid is None:
        return energy.mean(dim=-1), sim
    real = valid[:, None, :].to(energy.dtype)
    return (energy * real).sum(dim=-1) / real.sum(dim=-1).clamp_min(1), sim


def max_removable(num_tokens: int) -> int:
    """Most tokens one step removes: ``2r`` mergeable tokens must exist."""
    return int(num_tokens) // 2


@torch.no_grad()
def energy_matching(metric: Tensor,
                    num_remove,
                    margin: float,
                    alpha: float = 1.0,
                    valid: Optional[Tensor] = None) -> Tensor:
    """Group index of each token after one PiToMe step.

    Args:
        metric (Tensor): Features ``(B, L, C)``.
        num_remove (int | Tensor): ``r``, at most :func:`max_removable`
            ``(L)``; or ``(B,)``, one per video (of its real tokens).
        margin (float): ``m``.
        alpha (float): Slope of the ELU below the margin.
        valid (Tensor, optional): ``(B, L)`` bool, False for padding (at
            the end of each row), which is never matched.

    Returns:
        Tensor: ``(B, L)`` long, in ``[0, L - r)``; outputs in the source
        order of the tokens that stay.
    """
    batch, length, _ = metric.shape
    length = int(length)
    device = metric.device
    if not torch.is_tensor(num_remove):
        num_remove = int(num_remove)
        if num_remove > max_removable(length):
            raise ValueError(f'one PiToMe step removes at most '
                             f'{max_removable(length)} of {length} tokens, '
                             f'asked for {num_remove}')
        if num_remove <= 0:
            return torch.arange(
                length, device=device).expand(batch, -1).clone()
    num_remove = torch.as_tensor(num_remove, device=device).expand(batch)
    if valid is None:
        valid = torch.ones(batch, length, dtype=torch.bool, device=device)
    energy, sim = energy_scores(metric, margin, alpha, valid)
    # Stable: equal energies resolve by position, whatever the batch;
    # padding last.
    order = descending(energy, valid)
    # Each video pairs its 2 r most energetic tokens: A (even ranks) into
    # their most similar B (odd ranks) among its first r.
    widest = max_removable(length)
    mergeable = order[:, :2 * widest]
    set_a, set_b = mergeable[:, 0::2], mergeable[:, 1::2]
    rows = sim.gather(1, set_a[..., None].expand(-1, -1, length))
    scores = rows.gather(2, set_b[:, None, :].expand(-1, widest, -1))
    used = active(num_remove, widest)
    scores = scores.masked_fill(~used[:, None, :], float('-inf'))
    dst = set_b.gather(1, scores.argmax(dim=-1))
    return merge_into(set_a, dst, length, used)[0]
