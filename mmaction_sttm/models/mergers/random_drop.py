"""Random token dropping, the content-blind baseline."""
from typing import Optional, Tuple

from torch import Tensor

from mmaction_sttm.functional.random_drop import (evenly_spaced, nearest_kept,
                                                  random_subset)
from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.registry import MODELS
from .base import Cues, HardMerger


@MODELS.register_module()
class RandomDrop(HardMerger):
    """Keep ``round(L * (1 - ratio))`` tokens, drop the others.

    In training the kept tokens are a uniformly random subset per sample
    (``torch.rand``: the global seed governs it); at inference they are
    evenly spaced (``floor((i + 1/2) L / k)``), so the result is
    deterministic and independent of the batch. A kept token's features
    pass unchanged; a dropped token's features are discarded but its size
    goes to the kept token nearest in sequence order, so sizes still add up
    and size-weighted pooling covers every patch.

    Args:
        embed_dims (int): Channels ``D``.
        ratio (float): Fraction of tokens dropped, in (0, 1). Defaults to
            0.5.
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def assign(self, tokens: Tokens, num_out: int,
               cues: Cues) -> Tuple[Tensor, Optional[Tensor]]:
        x = tokens.x
        batch, length = int(x.shape[0]), int(x.shape[1])
        choose = random_subset if self.training else evenly_spaced
        kept = choose(length, num_out, batch, x.device)
        group = nearest_kept(kept, length)
        # Weight 1 on the kept token and 0 on the tokens handed to it: the
        # group mean is the kept token itself.
        weights = x.new_zeros(batch, length).scatter_(1, kept,
                                                      x.new_ones(kept.shape))
        return group, weights
