"""EViT: keep the attentive tokens, fuse the rest (Liang et al., ICLR 2022)."""
from typing import Optional, Tuple

from torch import Tensor

from mmaction_sttm.merging.evit import (FUSE_WEIGHTS, attentiveness,
                                        keep_and_fuse)
from mmaction_sttm.registry import MODELS
from .base import HardMerger, num_kept


@MODELS.register_module()
class EViT(HardMerger):
    """Token reorganisation of EViT (sec. 3).

    Keeps the ``k = round(L * (1 - ratio))`` tokens most attentive to the
    CLS token (cosine similarity to it, or to the mean token without one, the
    score of STTM's meta filter) in source order, and fuses all the other
    tokens into one extra token placed last, so ``k + 1`` tokens come out
    (``L`` when at most one token would be fused). The fused token is a
    convex combination with weights ``size * exp(score / tau)``
    (``fuse_weights='attention'``, EViT's CLS attention) or ``size``
    (``'size'``); its size is the sum of the fused sizes.

    Args:
        embed_dims (int): Channels ``D``.
        ratio (float): ``1 -`` EViT's keep rate, in (0, 1). Defaults to 0.5.
        fuse_weights (str): ``'attention'`` or ``'size'``. Defaults to
            ``'attention'``.
        tau (float): Temperature of the attention weights. Defaults to 0.1
            (STTM's correspondence temperature).
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def __init__(self,
                 embed_dims: int,
                 ratio: float = 0.5,
                 fuse_weights: str = 'attention',
                 tau: float = 0.1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(embed_dims, ratio, init_cfg)
        if fuse_weights not in FUSE_WEIGHTS:
            raise ValueError(f'fuse_weights must be one of {FUSE_WEIGHTS}, '
                             f'got {fuse_weights!r}')
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) \
                or not tau > 0:
            raise ValueError(f'tau must be a number > 0, got {tau!r}')
        self.fuse_weights = fuse_weights
        self.tau = float(tau)

    def num_outputs(self, num_tokens: int) -> int:
        num_tokens = int(num_tokens)
        keep = num_kept(num_tokens, self.ratio)
        # Fusing a single token would only rename it: then nothing merges.
        return num_tokens if keep >= num_tokens - 1 else keep + 1

    def assign(self, x: Tensor, sizes: Optional[Tensor],
               ref: Optional[Tensor],
               num_out: int) -> Tuple[Tensor, Optional[Tensor]]:
        scores = attentiveness(x.detach(),
                               None if ref is None else ref.detach())
        if sizes is None:
            sizes = x.new_ones(scores.shape)
        return keep_and_fuse(scores, sizes, num_out - 1, self.fuse_weights,
                             self.tau)

    def extra_repr(self) -> str:
        return (f'ratio={self.ratio}, fuse_weights={self.fuse_weights!r}, '
                f'tau={self.tau}')
