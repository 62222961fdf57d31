"""vid-TLDR: saliency-weighted token merging for video transformers (Choi et
al., CVPR 2024)."""
from typing import Optional, Tuple

from torch import Tensor

from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.functional.vid_tldr import saliency_matching
from mmaction_sttm.registry import MODELS
from .base import Cues, PairMerger, check_choice

METRICS = ('tokens', 'keys')


@MODELS.register_module()
class VidTLDR(PairMerger):
    """Training-free token merging with saliency (vid-TLDR, sec. 3).

    ToMe's bipartite matching (the ``r`` most similar ``A``-to-``B`` links
    merge), where a token merged into another weighs ``size * saliency``:
    the saliency is 0 on the background (attention flatter than the mean)
    and up to 1 on the foreground, from the sharpness of each token's
    attention in the block before the merge
    (:func:`~mmaction_sttm.functional.vid_tldr.saliency`). The merged size
    is the sum of the weights, so background merged away is dropped.
    Similarity is the cosine of the tokens (``metric='tokens'``, the
    authors' code) or of the attention keys (``'keys'``). ``r`` is
    ``L - round(L * (1 - ratio))``; one step removes at most half of the
    tokens (``ratio <= 0.5``).

    The sharpness needs the block's whole attention map, which the
    backbone recomputes beside its fused attention (one head at a time):
    it costs a ``Q K^T`` product on each block that a merge follows, and the
    GFLOPs count it.

    Args:
        embed_dims (int): Channels ``D``.
        ratio (float): Fraction of the tokens one step removes, in
            ``(0, 0.5]``. Defaults to 0.5.
        metric (str): ``'tokens'`` or ``'keys'``. Defaults to ``'tokens'``.
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    weighted_sizes = True

    def __init__(self,
                 embed_dims: int,
                 ratio: float = 0.5,
                 metric: str = 'tokens',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(embed_dims, ratio, init_cfg)
        self.metric = check_choice(metric, METRICS, 'metric')
        self.needs = ('sharpness', ) + (('keys', ) if metric == 'keys' else ())

    def assign(self, tokens: Tokens, per_video: Tensor,
               cues: Cues) -> Tuple[Tensor, Optional[Tensor]]:
        metric = cues.keys if self.metric == 'keys' else tokens.x
        return saliency_matching(
            metric.detach(), cues.sharpness.detach(), tokens.sizes,
            tokens.lengths() - per_video,
            tokens.valid() if tokens.counts is not None else None)

    def extra_repr(self) -> str:
        return f'ratio={self.ratio}, metric={self.metric!r}'
