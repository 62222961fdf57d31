"""Random token dropping, the content-blind baseline."""
from typing import Optional, Tuple

from torch import Tensor

from mmaction_sttm.functional.random_drop import (evenly_spaced_per_video,
                                                  nearest_kept,
                                                  random_subset_per_video)
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

    def assign(self, tokens: Tokens, per_video: Tensor,
               cues: Cues) -> Tuple[Tensor, Optional[Tensor]]:
        x = tokens.x
        length = int(x.shape[1])
        if self.training:
            kept = random_subset_per_video(tokens.valid(), per_video)
        else:
            kept = evenly_spaced_per_video(tokens.lengths(), per_video, length)
        group = nearest_kept(kept, length)
        # Only the real picks weigh (the slots past the end point past L).
        picked = kept < length
        weights = x.new_zeros(x.shape[0], 2 * length + kept.shape[1])
        weights.scatter_(1, kept, picked.to(x.dtype))
        return group, weights[:, :length]
