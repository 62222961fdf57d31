"""ToMe: Token Merging by bipartite soft matching (Bolya et al., ICLR 2023)."""
from typing import Optional, Tuple

from torch import Tensor

from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.functional.tome import bipartite_soft_matching
from mmaction_sttm.registry import MODELS
from .base import Cues, PairMerger, check_choice

METRICS = ('keys', 'tokens')


@MODELS.register_module()
class ToMe(PairMerger):
    """Bipartite soft matching (ToMe, sec. 3).

    Tokens alternate into sets A and B; each A token is linked to its most
    similar B token, the ``r`` strongest links are merged by size-weighted
    average (positions alike), and sizes add up. Similarity is the cosine of
    the attention keys of the block before the merge, mean over heads, as in
    the ToMe paper (``metric='keys'``), or of the tokens themselves
    (``metric='tokens'``, this project's earlier reading, kept to compare).
    ``r`` is ``L - round(L * (1 - ratio))`` so that ``ratio`` means the same
    output count as for STTM.

    Only A tokens are removed, so one step removes at most half of the
    tokens: ``ratio`` must be ``<= 0.5``. Larger reductions are what ToMe
    does anyway, a small merge after many blocks, e.g.::

        merger=dict(type='ToMe', layers=tuple(range(1, 12)),
                    stages=('spatiotemporal', ) * 11, ratio=0.064)

    (the schedule takes one ratio or one per layer).

    Args:
        embed_dims (int): Channels ``D``.
        ratio (float): Fraction of the tokens one step removes, in
            ``(0, 0.5]``. Defaults to 0.5.
        metric (str): ``'keys'`` or ``'tokens'``. Defaults to ``'keys'``.
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def __init__(self,
                 embed_dims: int,
                 ratio: float = 0.5,
                 metric: str = 'keys',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(embed_dims, ratio, init_cfg)
        self.metric = check_choice(metric, METRICS, 'metric')
        self.needs = ('keys', ) if metric == 'keys' else ()

    def assign(self, tokens: Tokens, per_video: Tensor,
               cues: Cues) -> Tuple[Tensor, Optional[Tensor]]:
        metric = cues.keys if self.metric == 'keys' else tokens.x
        group = bipartite_soft_matching(
            metric.detach(),
            tokens.lengths() - per_video,
            tokens.valid() if tokens.counts is not None else None)
        return group, None

    def extra_repr(self) -> str:
        return f'ratio={self.ratio}, metric={self.metric!r}'
