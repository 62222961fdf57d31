"""EViT: keep the attentive tokens, fuse the rest (Liang et al., ICLR 2022)."""
from typing import Optional, Tuple

from torch import Tensor

from mmaction_sttm.functional.evit import (FUSE_WEIGHTS, attentiveness,
                                           keep_and_fuse)
from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.registry import MODELS
from .base import Cues, HardMerger, check_choice, is_real, num_kept

SCORES = ('attention', 'cosine')


@MODELS.register_module()
class EViT(HardMerger):
    """Token reorganisation of EViT (sec. 3).

    Keeps the ``k = round(L * (1 - ratio))`` most attentive tokens in source
    order and fuses all the other tokens into one extra token placed last,
    so ``k + 1`` tokens come out (``L`` when at most one token would be
    fused). Attentiveness is, with ``score='attention'`` (EViT's), the CLS
    token's attention to each token in the block before the merge, mean
    over heads (the mean query's attention in a backbone without CLS), and
    with ``score='cosine'`` (this project's earlier reading, kept to
    compare) the cosine similarity to the CLS output (or the mean token).

    The fused token is a convex combination. With
    ``fuse_weights='attention'`` its weights are EViT's attention weights:
    the attention itself for ``score='attention'`` (it already counts a
    token's size when the backbone uses proportional attention), and
    ``size * exp(score / tau)`` for the cosine score; with ``'size'`` they
    are the sizes. The fused size is the sum of the fused sizes.

    Args:
        embed_dims (int): Channels ``D``.
        ratio (float): ``1 -`` EViT's keep rate, in (0, 1). Defaults to 0.5.
        score (str): ``'attention'`` or ``'cosine'``. Defaults to
            ``'attention'``.
        fuse_weights (str): ``'attention'`` or ``'size'``. Defaults to
            ``'attention'``.
        tau (float): Temperature of the cosine score's attention weights.
            Defaults to 0.1 (STTM's correspondence temperature).
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def __init__(self,
                 embed_dims: int,
                 ratio: float = 0.5,
                 score: str = 'attention',
                 fuse_weights: str = 'attention',
                 tau: float = 0.1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(embed_dims, ratio, init_cfg)
        self.score = check_choice(score, SCORES, 'score')
        self.fuse_weights = check_choice(fuse_weights, FUSE_WEIGHTS,
                                         'fuse_weights')
        if not is_real(tau) or not tau > 0:
            raise ValueError(f'tau must be a number > 0, got {tau!r}')
        self.tau = float(tau)
        self.needs = ('cls_attn', ) if score == 'attention' else ('cls', )

    def num_outputs(self, num_tokens: int) -> int:
        num_tokens = int(num_tokens)
        keep = num_kept(num_tokens, self.ratio)
        # Fusing a single token would only rename it: then nothing merges.
        return num_tokens if keep >= num_tokens - 1 else keep + 1

    def assign(self, tokens: Tokens, per_video: Tensor,
               cues: Cues) -> Tuple[Tensor, Optional[Tensor]]:
        valid = tokens.valid() if tokens.counts is not None else None
        if self.score == 'attention':
            return keep_and_fuse(
                cues.cls_attn.detach(),
                tokens.sizes,
                per_video - 1,
                self.fuse_weights,
                probabilities=True,
                valid=valid)
        scores = attentiveness(tokens.x.detach(),
                               None if cues.cls is None else cues.cls.detach(),
                               valid)
        return keep_and_fuse(
            scores,
            tokens.sizes,
            per_video - 1,
            self.fuse_weights,
            self.tau,
            valid=valid)

    def extra_repr(self) -> str:
        return (f'ratio={self.ratio}, score={self.score!r}, '
                f'fuse_weights={self.fuse_weights!r}, tau={self.tau}')
