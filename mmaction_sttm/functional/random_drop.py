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


def evenly_spaced_per_video(lengths: Tensor, num_keep: Tensor,
                            length: int) -> Tensor:
    """Evenly spaced picks, ``floor((i + 1/2) n / k)``, for videos of their
    own lengths ``n``, as one padded batch: row ``b`` holds video ``b``'s
    ``num_keep[b]`` picks, then indices past every token (``2 L`` and up),
    so the row stays increasing and :func:`nearest_kept` never sends a real
    token to a padded slot.

    Args:
        lengths (Tensor): ``(B,)`` real tokens per video.
        num_keep (Tensor): ``(B,)`` tokens each keeps, at least 1.
        length (int): ``L``, the padded length; also the row's width.

    Returns:
        Tensor: ``(B, L)`` long.
    """
    steps = torch.arange(int(length), device=lengths.device)
    idx = torch.div(
        (2 * steps + 1) * lengths[:, None],
        2 * num_keep[:, None],
        rounding_mode='floor')
    return _past_the_end(idx, num_keep)


def random_subset_per_video(valid: Tensor, num_keep: Tensor) -> Tensor:
    """A uniformly random subset of each video's real tokens (a fresh one per
    call; the global seed governs it), padded as
    :func:`evenly_spaced_per_video`; padding is never picked.

    Args:
        valid (Tensor): ``(B, L)`` bool, False for padding.
        num_keep (Tensor): ``(B,)`` tokens each keeps.

    Returns:
        Tensor: ``(B, L)`` long.
    """
    noise = torch.rand(valid.shape, device=valid.device)
    noise = noise.masked_fill(~valid, 2.0)  # padding sorts last
    idx = noise.argsort(dim=1)
    return _past_the_end(idx, num_keep).sort(dim=1).values


def _past_the_end(idx: Tensor, num_keep: Tensor) -> Tensor:
    """``idx`` with every slot from ``num_keep[b]`` on replaced by
    ``2 L + slot``."""
    steps = torch.arange(idx.shape[1], device=idx.device)
    past = (2 * idx.shape[1] + steps).expand_as(idx)
    return torch.where(steps < num_keep[:, None], idx, past)
