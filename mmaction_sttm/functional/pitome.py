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
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .tome import merge_into


def layer_margin(layer: int, depth: int) -> float:
    """PiToMe's margin for a merge on the output of block ``layer``
    (1-based) of ``depth``: ``0.9 - 0.8 * (layer - 1) / depth``."""
    return 0.9 - 0.8 * (int(layer) - 1) / int(depth)


def energy_scores(metric: Tensor,
                  margin: float,
                  alpha: float = 1.0) -> Tuple[Tensor, Tensor]:
    """Energy of every token and the cosine similarities it comes from.

    Args:
        metric (Tensor): Features ``(B, L, C)`` (the keys, mean over heads).
        margin (float): ``m``.
        alpha (float): Slope of the ELU below the margin.

    Returns:
        tuple[Tensor, Tensor]: Energy ``(B, L)`` and cosine similarities
        ``(B, L, L)``, float32.
    """
    metric = F.normalize(metric.float(), dim=-1)
    sim = torch.bmm(metric, metric.transpose(1, 2))
    return F.elu(sim - margin, alpha=alpha).mean(dim=-1), sim


def max_removable(num_tokens: int) -> int:
    """Most tokens one step removes: ``2r`` mergeable tokens must exist."""
    return int(num_tokens) // 2


@torch.no_grad()
def energy_matching(metric: Tensor,
                    num_remove: int,
                    margin: float,
                    alpha: float = 1.0) -> Tensor:
    """Group index of each token after one PiToMe step.

    Args:
        metric (Tensor): Features ``(B, L, C)``.
        num_remove (int): ``r``, at most :func:`max_removable` ``(L)``.
        margin (float): ``m``.
        alpha (float): Slope of the ELU below the margin.

    Returns:
        Tensor: ``(B, L)`` long, in ``[0, L - r)``; outputs in the source
        order of the tokens that stay.
    """
    batch, length, _ = metric.shape
    length, num_remove = int(length), int(num_remove)
    if num_remove > max_removable(length):
        raise ValueError(f'one PiToMe step removes at most '
                         f'{max_removable(length)} of {length} tokens, '
                         f'asked for {num_remove}')
    if num_remove <= 0:
        return torch.arange(
            length, device=metric.device).expand(batch, -1).clone()
    energy, sim = energy_scores(metric, margin, alpha)
    # Stable: equal energies resolve by position, whatever the batch.
    order = energy.argsort(dim=-1, descending=True, stable=True)
    mergeable = order[:, :2 * num_remove]
    set_a, set_b = mergeable[:, 0::2], mergeable[:, 1::2]
    rows = sim.gather(1, set_a[..., None].expand(-1, -1, length))
    scores = rows.gather(2, set_b[:, None, :].expand(-1, num_remove, -1))
    dst = set_b.gather(1, scores.argmax(dim=-1))
    return merge_into(set_a, dst, length)[0]
