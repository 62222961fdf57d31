"""Run-length tokenization (RLT; Choudhury et al., NeurIPS 2024), as
functions over tensors.

A token is a tubelet: ``tubelet`` frames of one ``ph x pw`` patch. A tubelet
*repeats* when it differs little from the tubelet at the same place one
temporal step earlier; a run is a kept tubelet followed by its repeats, and
RLT keeps only the run's first tubelet (with the run's length). Tokens are
frame-major, as everywhere in the package: index ``step * P + patch``.

What "differs little" means is our reading, named in ``docs/method.md``
("RLT"): the mean absolute difference over the tubelet's pixels and
channels, in the units of the normalised input, below ``threshold``.
"""
from typing import NamedTuple, Tuple

import torch
from torch import Tensor


class Runs(NamedTuple):
    """The run-length code of a batch of clips.

    Args:
        keep (Tensor): ``(B, L)`` bool, True for the first tubelet of each
            run (every tubelet of the first step is kept).
        lengths (Tensor): ``(B, L)`` long, the run length of each kept
            tubelet (itself and its repeats), zero for dropped ones.
        head (Tensor): ``(B, L)`` long, the index of the kept tubelet whose
            run each tubelet belongs to (itself when kept).
    """
    keep: Tensor
    lengths: Tensor
    head: Tensor


#: Which frames of two tubelets :func:`tubelet_differences` compares.
PAIRS = ('all', 'ends')


def tubelet_differences(clip: Tensor,
                        patch_size: Tuple[int, int],
                        tubelet: int,
                        pairs: str = 'all') -> Tensor:
    """Mean absolute difference of every tubelet to the tubelet at the same
    place one temporal step earlier.

    Args:
        clip (Tensor): Clips ``(B, C, T, H, W)``, normalised.
        patch_size (tuple[int, int]): Patch height and width.
        tubelet (int): Frames per token.
        pairs (str): ``'all'``: each frame of the tubelet against the same
            frame of the one before, averaged over the ``tubelet`` pairs
            (our reading); ``'ends'``: one pair, the tubelet's last frame
            against the first frame of the one before, as the RLT authors'
            code compares them. Defaults to ``'all'``.

    Returns:
        Tensor: ``(B, S, P)`` in float32 for ``S = T / tubelet`` steps and
        ``P`` patches per step; ``inf`` on the first step (nothing before).
    """
    if pairs not in PAIRS:
        raise ValueError(f'pairs must be one of {PAIRS}, got {pairs!r}')
    batch, channels, frames, height, width = clip.shape
    (ph, pw), steps = patch_size, frames // tubelet
    gh, gw = height // ph, width // pw
    x = clip.float().reshape(batch, channels, steps, tubelet, gh, ph, gw, pw)
    if pairs == 'ends':
        # (B, C, S - 1, gh, ph, gw, pw): last frame of step s against the
        # first frame of step s - 1.
        diff = (x[:, :, 1:, -1] - x[:, :, :-1, 0]).abs().mean(dim=(1, 4, 6))
    else:
        diff = (x[:, :, 1:] - x[:, :, :-1]).abs().mean(dim=(1, 3, 5, 7))
    first = diff.new_full((batch, 1, gh, gw), float('inf'))
    return torch.cat([first, diff], dim=1).reshape(batch, steps, gh * gw)


def run_lengths(repeats: Tensor) -> Runs:
    """Runs of a repeat mask.

    Args:
        repeats (Tensor): ``(B, S, P)`` bool, True where a tubelet repeats
            the one before it (never on step 0).

    Returns:
        Runs: Flattened frame-major to ``L = S * P``.
    """
    batch, steps, per_step = repeats.shape
    keep = ~repeats
    # Backwards: a tubelet's run continues through the repeats after it.
    cont = torch.ones_like(repeats, dtype=torch.long)
    for s in range(steps - 2, -1, -1):
        cont[:, s] += cont[:, s + 1] * repeats[:, s + 1]
    # Forwards: a repeat belongs to the run of the step before it.
    index = torch.arange(
        steps * per_step, device=repeats.device).reshape(1, steps, per_step)
    head = index.expand(batch, -1, -1).clone()
    for s in range(1, steps):
        head[:, s] = torch.where(repeats[:, s], head[:, s - 1], head[:, s])
    lengths = cont * keep
    return Runs(
        keep.reshape(batch, -1), lengths.reshape(batch, -1),
        head.reshape(batch, -1))


def pack_order(keep: Tensor) -> Tuple[Tensor, Tensor]:
    """Where each video's kept tokens go in a padded batch: kept tokens
    first, in their original order, then the rest.

    Args:
        keep (Tensor): ``(B, L)`` bool.

    Returns:
        tuple[Tensor, Tensor]: ``order`` ``(B, L)`` long, the source index
        of each padded position (the first ``counts[b]`` are kept tokens),
        and ``counts`` ``(B,)`` long.
    """
    # A stable sort on "dropped" keeps the original order within each part.
    order = torch.sort((~keep).to(torch.uint8), dim=1, stable=True).indices
    return order, keep.sum(dim=1)
