"""Random token dropping, the content-blind baseline of token reduction.

Training keeps a random subset of the tokens (a fresh one per sample and
step, as in random masking / Turbo training); inference keeps evenly spaced
tokens, so that it is deterministic and each sample's result does not depend
on the rest of the batch. A dropped token's features are discarded, but the
patches it stood for are handed to the nearest kept token (in sequence
order), so token sizes keep adding up to the number of input patches and
size-weighted pooling / proportional attention still see the whole clip.
"""
import torch
from torch import Tensor


def evenly_spaced(length: int, num_keep: int, batch: int,
                  device: torch.device) -> Tensor:
    """Indices ``floor((i + 1/2) * L / k)``, ``i < k``: the centres of ``k``
    equal bins of the sequence.

    Returns:
        Tensor: ``(B, k)`` long, increasing.
    """
    length, num_keep = int(length), int(num_keep)
    steps = torch.arange(num_keep, device=device)
    idx = torch.div(
        (2 * steps + 1) * length, 2 * num_keep, rounding_mode='floor')
    return idx.expand(int(batch), -1)


def random_subset(length: int, num_keep: int, batch: int,
                  device: torch.device) -> Tensor:
    """A uniformly random ``k``-subset per sample (``torch.rand``, so the
    global seed governs it).

    Returns:
        Tensor: ``(B, k)`` long, increasing.
    """
    noise = torch.rand(int(batch), int(length), device=device)
    idx = noise.argsort(dim=1)[:, :int(num_keep)]
    return idx.sort(dim=1).values


def nearest_kept(kept: Tensor, length: int) -> Tensor:
    """Output index of every token: its own if kept, else that of the kept
    token nearest in sequence order (the earlier one on a tie).

    Args:
        kept (Tensor): Kept indices ``(B, k)``, increasing.
        length (int): ``L``.

    Returns:
        Tensor: ``(B, L)`` long in ``[0, k)``.
    """
    batch, num_keep = kept.shape
    positions = torch.arange(int(length), device=kept.device)
    positions = positions.expand(batch, -1).contiguous()
    after = torch.searchsorted(kept.contiguous(), positions)
    right = after.clamp(max=int(num_keep) - 1)
    left = (after - 1).clamp(min=0)
    dist_left = (positions - kept.gather(1, left)).abs()
    dist_right = (kept.gather(1, right) - positions).abs()
    return torch.where(dist_left <= dist_right, left, right)
