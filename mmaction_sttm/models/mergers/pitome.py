"""PiToMe: energy-score merging that protects isolated tokens (Tran et al.,
NeurIPS 2024)."""
from typing import Optional, Tuple

from torch import Tensor

from mmaction_sttm.functional.pitome import (energy_matching, layer_margin,
                                             max_removable)
from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.registry import MODELS
from .base import Cues, PairMerger, check_choice, is_real

METRICS = ('keys', 'tokens')


@MODELS.register_module()
class PiToMe(PairMerger):
    """Spectrum-preserving token merging (PiToMe, sec. 3).

    The ``2r`` tokens of highest energy (those with the most close
    neighbours, :func:`~mmaction_sttm.functional.pitome.energy_scores`) may
    merge; they alternate, in order of energy, into sets ``A`` and ``B``,
    and every ``A`` token joins its most similar ``B`` token by
    size-weighted average (positions alike; sizes add up). The other tokens
    are protected. ``r`` is ``L - round(L * (1 - ratio))``, so ``ratio``
    means the same output count as for every merger; one step removes at
    most half of the tokens (``ratio <= 0.5``).

    Similarity is the cosine of the attention keys of the block before the
    merge, mean over heads (``metric='keys'``, the authors' ViT code), or of
    the tokens (``'tokens'``). The margin ``m`` is, unless given, the
    authors' schedule ``0.9 - 0.8 * i / depth`` for the merge after block
    ``i + 1``; the merge schedule passes ``layer`` and ``depth``.

    Args:
        embed_dims (int): Channels ``D``.
        ratio (float): Fraction of the tokens one step removes, in
            ``(0, 0.5]``. Defaults to 0.5.
        margin (float, optional): ``m`` in ``(-1, 1)``; None follows the
            schedule above. Defaults to None.
        alpha (float): Slope of the energy's ELU below the margin. Defaults
            to 1.0.
        metric (str): ``'keys'`` or ``'tokens'``. Defaults to ``'keys'``.
        layer (int, optional): The block the merge follows (1-based); set
            by the merge schedule. Defaults to None (the first block).
        depth (int, optional): The backbone's number of blocks; set by the
            merge schedule. Defaults to None.
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def __init__(self,
                 embed_dims: int,
                 ratio: float = 0.5,
                 margin: Optional[float] = None,
                 alpha: float = 1.0,
                 metric: str = 'keys',
                 layer: Optional[int] = None,
                 depth: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(embed_dims, ratio, init_cfg)
        if margin is None:
            margin = layer_margin(layer or 1, depth or 1)
        if not is_real(margin) or not -1 < margin < 1:
            raise ValueError(f'margin must be a number in (-1, 1), got '
                             f'{margin!r}')
        if not is_real(alpha) or not alpha > 0:
            raise ValueError(f'alpha must be a number > 0, got {alpha!r}')
        self.margin = float(margin)
        self.alpha = float(alpha)
        self.metric = check_choice(metric, METRICS, 'metric')
        self.needs = ('keys', ) if metric == 'keys' else ()

    @staticmethod
    def max_removable(num_tokens: int) -> int:
        """``2r`` tokens must be mergeable: ``floor(L / 2)``."""
        return max_removable(num_tokens)

    def assign(self, tokens: Tokens, per_video: Tensor,
               cues: Cues) -> Tuple[Tensor, Optional[Tensor]]:
        metric = cues.keys if self.metric == 'keys' else tokens.x
        group = energy_matching(
            metric.detach(),
            tokens.lengths() - per_video, self.margin, self.alpha,
            tokens.valid() if tokens.counts is not None else None)
        return group, None

    def extra_repr(self) -> str:
        return (f'ratio={self.ratio}, margin={self.margin:.4g}, '
                f'alpha={self.alpha}, metric={self.metric!r}')
