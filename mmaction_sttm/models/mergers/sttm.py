"""STTM, the Spatial-temporal Token Merger (Feng et al., TOMM 2024, 3.2)."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.profiler import record_function

from mmaction_sttm.functional.evit import real_mean
from mmaction_sttm.functional.groups import active
from mmaction_sttm.functional.sttm import (correspondence, normalize,
                                           select_meta_tokens_per_video)
from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.registry import MODELS
from .base import Cues, Merger, MergeResult, check_choice, is_real

#: Named readings of the paper's "randomly initialised" (sec. 3.2.3).
FUSE_INITS = ('identity', 'trunc_normal', 'orthogonal', 'residual')
META_SCORES = ('attention', 'cosine')
#: Where the greedy most-orthogonal selection starts (sec. 3.2.1).
GREEDY_STARTS = ('attentive', 'random')
# Below this the correspondence logits |cos| / tau would overflow float16
# (max 65504) if they were half precision; at 1e-4 the assignment is already
# a hard argmax.
MIN_TAU = 1e-4


@MODELS.register_module()
class STTM(Merger):
    """Spatial-temporal Token Merger (sec. 3.2).

    One merge: ``L`` tokens ``X`` with position / motion features ``E`` become
    ``L' = round(L * (1 - ratio))`` tokens

    1. meta tokens: greedy most-orthogonal selection of ``alpha * L'``
       candidates, starting from the most attentive token (or a random one,
       ``greedy_start``), filtered to ``L'`` by attentiveness (eq. 3);
    2. correspondence ``C = softmax(phi(X) phi(M)^T / tau)``, normalised per
       meta token so each output is a convex combination of inputs (eq. 4);
    3. appearance ``A = C^T X`` and motion ``P = C^T E`` (eqs. 5, 6);
    4. fusion ``Y = Linear([A, P])`` (eq. 2).

    Attentiveness (``meta_score``) is, as in EViT which the paper follows,
    the CLS token's attention to each token in the block before the merge,
    mean over heads (``'attention'``; the mean query's attention in a
    backbone without CLS), or the cosine similarity to the CLS output (the
    mean token without CLS; ``'cosine'``, the earlier reading).

    The paper says only that ``phi`` and the fusion layer are "randomly
    initialised"; ``fuse_init`` names the readings:

    - ``'identity'``: ``phi = I``, ``Y = A`` at the start, so the module
      drops into a trained backbone without disturbing it;
    - ``'trunc_normal'``: both layers trunc-normal std 0.02, zero bias (a
      gain of about 0.2 on the token stream);
    - ``'orthogonal'``: norm preserving: ``phi`` and the fusion layer's
      appearance block (the columns acting on ``A``) random orthogonal, its
      motion block trunc-normal std 0.02, zero biases;
    - ``'residual'``: ``Y = A + Linear([A, P])`` with the fusion layer
      trunc-normal std 0.02 and ``phi`` orthogonal.

    Args:
        embed_dims (int): Channels ``D``.
        ratio (float): Merge ratio ``rho`` in (0, 1). Defaults to 0.5.
        alpha (float): Over-selection factor, ``>= 1``. Defaults to 1.5.
        meta_filter (bool): Over-select and filter by attentiveness (Table 2).
            Defaults to True.
        meta_score (str): ``'attention'`` or ``'cosine'``. Defaults to
            ``'attention'``.
        motion (bool): Aggregate motion features and fuse them (Table 1). If
            False the output is the appearance ``A`` alone and the module has
            no fusion layer. Defaults to True.
        fuse_init (str): One of :data:`FUSE_INITS`. Defaults to
            ``'identity'``.
        tau (float): Temperature of the correspondence softmax. Defaults to
            0.1.
        greedy_start (str): First token of the greedy selection:
            ``'attentive'``, the most attentive token (deterministic), or
            ``'random'``, a uniformly random token per sample and merge,
            drawn from torch's global generator in training and inference
            alike (the paper's words). Defaults to ``'attentive'``.
        init_cfg (dict, optional): MMEngine initialisation config; replaces
            ``fuse_init`` when given.
    """

    def __init__(self,
                 embed_dims: int,
                 ratio: float = 0.5,
                 alpha: float = 1.5,
                 meta_filter: bool = True,
                 meta_score: str = 'attention',
                 motion: bool = True,
                 fuse_init: str = 'identity',
                 tau: float = 0.1,
                 greedy_start: str = 'attentive',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(embed_dims, ratio, init_cfg)
        if not is_real(alpha) or alpha < 1:
            raise ValueError(f'alpha must be a finite number >= 1, got '
                             f'{alpha!r}')
        if fuse_init == 'random':
            raise ValueError(
                f"fuse_init='random' is ambiguous (the paper's \"randomly "
                f"initialised\" has several readings); use one of "
                f"{FUSE_INITS} ('trunc_normal' is the former 'random')")
        check_choice(fuse_init, FUSE_INITS, 'fuse_init')
        check_choice(meta_score, META_SCORES, 'meta_score')
        check_choice(greedy_start, GREEDY_STARTS, 'greedy_start')
        if not is_real(tau) or tau < MIN_TAU:
            raise ValueError(f'tau must be a finite number >= {MIN_TAU}, '
                             f'got {tau!r}')
        # bool('no') is True: only real booleans, so a typo cannot silently
        # switch a component on.
        for name, flag in (('meta_filter', meta_filter), ('motion', motion)):
            if not isinstance(flag, bool):
                raise TypeError(f'{name} must be True or False, got {flag!r}')
        if fuse_init == 'residual' and not motion:
            raise ValueError("fuse_init='residual' needs the fusion layer "
                             '(motion=True)')
        self.alpha = float(alpha)
        self.meta_filter = meta_filter
        self.meta_score = meta_score
        self.motion = motion
        self.fuse_init = fuse_init
        self.tau = float(tau)
        self.greedy_start = greedy_start
        self.needs = ('cls_attn', ) if meta_score == 'attention' else ('cls', )
        self.phi = nn.Linear(embed_dims, embed_dims)
        self.fuse = nn.Linear(2 * embed_dims, embed_dims) if motion else None
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        dims = self.embed_dims
        for layer in (self.phi, self.fuse):
            if layer is not None:
                nn.init.zeros_(layer.bias)
        if self.fuse_init == 'identity':
            nn.init.eye_(self.phi.weight)
        elif self.fuse_init == 'trunc_normal':
            nn.init.trunc_normal_(self.phi.weight, std=0.02)
        else:
            nn.init.orthogonal_(self.phi.weight)
        if self.fuse is None:
            return
        weight = self.fuse.weight
        with torch.no_grad():
            if self.fuse_init == 'identity':
                weight.zero_()
                weight[:, :dims].copy_(torch.eye(dims))
            elif self.fuse_init == 'orthogonal':
                nn.init.orthogonal_(weight[:, :dims])
                nn.init.trunc_normal_(weight[:, dims:], std=0.02)
            else:  # trunc_normal, residual
                nn.init.trunc_normal_(weight, std=0.02)

    def init_weights(self) -> None:
        """Apply ``fuse_init`` (or ``init_cfg`` when given).

        Without an ``init_cfg`` the module never marks itself initialised,
        so every ancestor's ``init_weights`` (MMEngine's recursion, after
        the ancestor's own ``init_cfg``, e.g. ``TruncNormal`` on every
        ``Linear``) applies ``fuse_init`` again: the merger's init holds
        whatever order the calls come in."""
        if self.init_cfg:
            super().init_weights()
        else:
            self._reset_parameters()

    def init_description(self) -> str:
        return f'fuse_init={self.fuse_init!r}'

    @property
    def neutral_init(self) -> bool:
        """Only the identity init (or no fusion layer) starts with
        ``Y = A``; the others rotate or rescale the token stream."""
        return self.fuse is None or self.fuse_init == 'identity'

    def merge(self, tokens: Tokens, num_out: int, per_video: Tensor,
              cues: Cues) -> MergeResult:
        # The record_function ranges name the parts for the benchmark's
        # breakdown (tools/analysis_tools/benchmark.py --breakdown); they cost
        # nothing without a profiler and torch.compile ignores them.
        x, sizes = tokens.x, tokens.sizes
        batch, length, dims = x.shape
        pos = tokens.pos.expand(batch, -1, -1).to(x.dtype)

        def identity() -> Tensor:
            return torch.eye(
                length, num_out, dtype=x.dtype,
                device=x.device).expand(batch, -1, -1)

        if tokens.counts is None and num_out >= length:
            # Nothing to merge: every token is its own meta token.
            weights = assign = identity()
        else:
            valid = tokens.valid()
            with record_function('sttm.selection'), torch.no_grad():
                x_norm = normalize(x.detach())
                if self.meta_score == 'attention':
                    scores = cues.cls_attn.detach().float()
                else:
                    ref = real_mean(x.detach(), valid) if cues.cls is None \
                        else cues.cls.detach()
                    scores = torch.einsum('bld,bd->bl', x_norm, normalize(ref))
                start = None
                if self.greedy_start == 'random':
                    start = (torch.rand(batch, device=x.device) *
                             tokens.lengths()).long()
                meta_idx, used = select_meta_tokens_per_video(
                    x_norm, per_video, num_out, scores, self.alpha,
                    self.meta_filter, start, valid)
            with record_function('sttm.fusion'):
                feats = self.phi(x)
            with record_function('sttm.correspondence'):
                weights, assign, new_sizes = correspondence(
                    normalize(feats), meta_idx, sizes, self.tau, used)
            sizes = new_sizes
            if tokens.counts is not None:
                # A padded batch's video with nothing to merge keeps its
                # tokens as they are (without counts every video merges).
                alone = (per_video >= tokens.lengths())[:, None, None]
                eye = identity()
                weights = torch.where(alone, eye, weights)
                assign = torch.where(alone, eye, assign)
                sizes = torch.where(alone[:, 0], tokens.sizes[:, :num_out],
                                    sizes)
        with record_function('sttm.aggregation'):
            # A = W^T X and P = W^T E (eqs. 5, 6), two products without a
            # concatenated [X, E] copy.
            weights_t = weights.transpose(1, 2).to(x.dtype)
            appearance = torch.bmm(weights_t, x)
            motion = torch.bmm(weights_t, pos)
        if self.fuse is None:
            return MergeResult(appearance, motion, sizes, assign)
        with record_function('sttm.fusion'):
            # fuse([A, P]) = A W_a^T + P W_p^T + b: the fusion layer's two
            # column blocks, so [A, P] is never concatenated either.
            weight = self.fuse.weight
            out = F.linear(appearance, weight[:, :dims], self.fuse.bias) + \
                F.linear(motion, weight[:, dims:])
            if self.fuse_init == 'residual':
                out = appearance + out
            if tokens.counts is not None:
                # Padded slots stay zero (the fusion bias would fill them).
                slots = active(per_video, num_out)
                out = out * slots.unsqueeze(-1).to(out.dtype)
        return MergeResult(out, motion, sizes, assign)

    def extra_repr(self) -> str:
        return (f'ratio={self.ratio}, alpha={self.alpha}, '
                f'meta_filter={self.meta_filter}, '
                f'meta_score={self.meta_score!r}, motion={self.motion}, '
                f'fuse_init={self.fuse_init!r}, tau={self.tau}, '
                f'greedy_start={self.greedy_start!r}')
