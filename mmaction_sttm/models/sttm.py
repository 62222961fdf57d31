"""The STTM module and the merge schedule that places it in a backbone."""
import math
import numbers
from typing import Any, Dict, Optional, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmaction_sttm.merging.sttm import (correspondence, normalize,
                                        num_meta_tokens, select_meta_tokens)
from mmaction_sttm.merging.tokens import Tokens
from mmaction_sttm.registry import MODELS

STAGES = ('spatial', 'spatiotemporal')
FUSE_INITS = ('trunc_normal', 'orthogonal', 'identity', 'residual')
# Below this the correspondence logits |cos| / tau overflow float16 (max
# 65504) under mixed precision and the softmax turns into NaN; at 1e-4 the
# assignment is already a hard argmax.
MIN_TAU = 1e-4


def _is_real(value: Any) -> bool:
    """A real number, bools excluded (``True`` is not a ratio)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and math.isfinite(value)


def _check_ratio(ratio: float, field: str) -> None:
    if not _is_real(ratio) or not 0 < ratio < 1:
        raise ValueError(f'{field} must be a number in (0, 1), got {ratio!r}')


@MODELS.register_module()
class STTM(BaseModule):
    """Spatial-temporal Token Merger (sec. 3.2).

    One merge: ``L`` tokens ``X`` with position / motion features ``E`` become
    ``L' = round(L * (1 - ratio))`` tokens

    1. meta tokens: greedy most-orthogonal selection of ``alpha * L'``
       candidates, filtered to ``L'`` by attentiveness to the CLS token (or to
       the mean token when the backbone has no CLS token) (eq. 3);
    2. correspondence ``C = softmax(phi(X) phi(M)^T / tau)``, normalised per
       meta token so each output is a convex combination of inputs (eq. 4);
    3. appearance ``A = C^T X`` and motion ``P = C^T E`` (eqs. 5, 6);
    4. fusion ``Y = Linear([A, P])`` (eq. 2).

    Args:
        embed_dims (int): Channels ``D``.
        ratio (float): Merge ratio ``rho`` in (0, 1). Defaults to 0.5.
        alpha (float): Over-selection factor, ``>= 1``. Defaults to 1.5.
        meta_filter (bool): Over-select and filter by attentiveness (Table 2).
            Defaults to True.
        motion (bool): Aggregate motion features and fuse them (Table 1). If
            False the output is the appearance ``A`` alone and the module has
            no fusion layer. Defaults to True.
        fuse_init (str): Our reading of the paper's "randomly initialised"
            (docs/method.md): ``'trunc_normal'`` (std 0.02 for ``phi`` and
            the fusion layer), ``'orthogonal'`` (``phi`` orthogonal; the
            fusion layer orthogonal on ``A`` and std 0.02 on ``P``, so token
            norms are kept), ``'identity'`` (``phi = I`` and ``Y = A`` at
            the start, so the module drops into a trained backbone without
            disturbing it) or ``'residual'`` (``Y = A + fuse([A, P])``,
            ``phi`` orthogonal, ``fuse`` std 0.02). Defaults to
            ``'identity'``.
        tau (float): Temperature of the correspondence softmax. Defaults to
            0.1.
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def __init__(self,
                 embed_dims: int,
                 ratio: float = 0.5,
                 alpha: float = 1.5,
                 meta_filter: bool = True,
                 motion: bool = True,
                 fuse_init: str = 'identity',
                 tau: float = 0.1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(embed_dims, int) or isinstance(
                embed_dims, bool) or embed_dims < 1:
            raise ValueError(
                f'embed_dims must be a positive int, got {embed_dims!r}')
        _check_ratio(ratio, 'ratio')
        if not _is_real(alpha) or alpha < 1:
            raise ValueError(f'alpha must be a finite number >= 1, got '
                             f'{alpha!r}')
        if fuse_init not in FUSE_INITS:
            hint = (" ('random' was ambiguous: 'trunc_normal' is the old "
                    "std-0.02 init)" if fuse_init == 'random' else '')
            raise ValueError(f'fuse_init must be one of {FUSE_INITS}, got '
                             f'{fuse_init!r}{hint}')
        if not _is_real(tau) or tau < MIN_TAU:
            raise ValueError(f'tau must be a finite number >= {MIN_TAU}, '
                             f'got {tau!r}')
        # bool('no') is True: only real booleans, so a typo cannot silently
        # switch a component on.
        for name, flag in (('meta_filter', meta_filter), ('motion', motion)):
            if not isinstance(flag, bool):
                raise TypeError(f'{name} must be True or False, got {flag!r}')
        self.embed_dims = embed_dims
        self.ratio = float(ratio)
        self.alpha = float(alpha)
        self.meta_filter = bool(meta_filter)
        self.motion = bool(motion)
        self.fuse_init = fuse_init
        self.tau = float(tau)
        self.phi = nn.Linear(embed_dims, embed_dims)
        self.fuse = nn.Linear(2 * embed_dims, embed_dims) if motion else None
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """Apply ``fuse_init``, our reading of the paper's "randomly
        initialised" (docs/method.md, "Fusion-layer init")."""
        dims = self.embed_dims
        for layer in (self.phi, self.fuse):
            if layer is not None:
                nn.init.zeros_(layer.bias)
        if self.fuse_init == 'trunc_normal':
            for layer in (self.phi, self.fuse):
                if layer is not None:
                    nn.init.trunc_normal_(layer.weight, std=0.02)
            return
        if self.fuse_init == 'identity':
            nn.init.eye_(self.phi.weight)
        else:
            nn.init.orthogonal_(self.phi.weight)
        if self.fuse is None:
            return
        with torch.no_grad():
            appearance, motion = self.fuse.weight.split(dims, dim=1)
            if self.fuse_init == 'identity':
                appearance.copy_(torch.eye(dims))
                motion.zero_()
            elif self.fuse_init == 'orthogonal':
                # Norm-preserving on A, small on P: Y starts as a random
                # rotation of the appearance, plus a little motion.
                nn.init.orthogonal_(appearance)
                nn.init.trunc_normal_(motion, std=0.02)
            else:  # residual: Y = A + fuse([A, P]), fuse small
                nn.init.trunc_normal_(self.fuse.weight, std=0.02)

    def init_weights(self) -> None:
        """Keep the chosen ``fuse_init`` unless an ``init_cfg`` is given."""
        if self.init_cfg:
            super().init_weights()
        else:
            self._reset_parameters()

    def num_outputs(self, num_tokens: int) -> int:
        """Number of tokens a merge of ``num_tokens`` tokens produces."""
        return num_meta_tokens(int(num_tokens), self.ratio)

    def forward(self,
                x: Tensor,
                pos: Tensor,
                sizes: Optional[Tensor] = None,
                ref: Optional[Tensor] = None,
                sources: Optional[Tensor] = None) -> Tuple[Tensor, ...]:
        """Merge ``L`` tokens into ``L'``.

        Args:
            x (Tensor): Tokens ``X`` ``(B, L, D)`` without the CLS token.
            pos (Tensor): Position / motion features ``E`` ``(B or 1, L, D)``.
            sizes (Tensor, optional): Token sizes ``(B, L)``; all ones if
                None.
            ref (Tensor, optional): Reference token of the meta filter
                ``(B, D)``, the CLS token; the mean token is used if None.
            sources (Tensor, optional): Soft source map ``(B, L0, L)`` to
                carry forward.

        Returns:
            tuple[Tensor, ...]: Fused tokens ``Y`` ``(B, L', D)``, motion
            features ``P`` ``(B, L', D)``, sizes ``(B, L')`` and the source
            map ``(B, L0, L')`` (None if not given).
        """
        self._check_inputs(x, pos, sizes, ref, sources)
        batch, length, dims = x.shape
        num_meta = self.num_outputs(length)
        pos = pos.expand(batch, -1, -1)
        if num_meta >= length:
            # Nothing to merge: every token is its own meta token.
            if sizes is None:
                sizes = x.new_ones(batch, length)
            merged = torch.cat([x, pos], dim=-1) if self.motion else x
        else:
            with torch.no_grad():
                x_norm = normalize(x.detach())
                if ref is None:
                    ref = x.detach().mean(dim=1)
                scores = torch.einsum('bld,bd->bl', x_norm,
                                      normalize(ref.detach()))
                meta_idx = select_meta_tokens(x_norm, num_meta, scores,
                                              self.alpha, self.meta_filter)
            feats = normalize(self.phi(x))
            weights, assign, sizes = correspondence(feats, meta_idx, sizes,
                                                    self.tau)
            weights_t = weights.transpose(1, 2)
            # [A, P] = W^T [X, E] in one product; it is also the fusion
            # layer's input, so nothing is concatenated twice.
            merged = torch.bmm(weights_t,
                               torch.cat([x, pos], dim=-1)
                               if self.motion else x)
            if sources is not None:
                sources = torch.bmm(sources, assign)
        if self.motion:
            fused = self.fuse(merged)
            if self.fuse_init == 'residual':
                fused = fused + merged[..., :dims]
            return fused, merged[..., dims:], sizes, sources
        motion = pos if num_meta >= length else torch.bmm(weights_t, pos)
        return merged, motion, sizes, sources

    def _check_inputs(self, x: Tensor, pos: Tensor, sizes: Optional[Tensor],
                      ref: Optional[Tensor],
                      sources: Optional[Tensor]) -> None:
        """Shapes only (no pass over the values): a mismatch is reported
        here, by argument name, and not as a matmul error further down."""
        dims = self.embed_dims
        if x.dim() != 3 or x.shape[-1] != dims:
            raise ValueError(f'STTM: x must be (B, L, {dims}) tokens, got '
                             f'shape {tuple(x.shape)}')
        batch, length = x.shape[:2]
        if pos.dim() != 3 or pos.shape[0] not in (1, batch) \
                or pos.shape[1:] != x.shape[1:]:
            raise ValueError(f'STTM: pos must be ({batch} or 1, {length}, '
                             f'{dims}), got shape {tuple(pos.shape)}')
        if sizes is not None and tuple(sizes.shape) != (batch, length):
            raise ValueError(f'STTM: sizes must be ({batch}, {length}), got '
                             f'shape {tuple(sizes.shape)}')
        if ref is not None and tuple(ref.shape) != (batch, dims):
            raise ValueError(f'STTM: ref must be ({batch}, {dims}), got '
                             f'shape {tuple(ref.shape)}')
        if sources is not None and (sources.dim() != 3
                                    or sources.shape[0] != batch
                                    or sources.shape[2] != length):
            raise ValueError(f'STTM: sources must be ({batch}, L0, {length}),'
                             f' got shape {tuple(sources.shape)}')

    def extra_repr(self) -> str:
        return (f'ratio={self.ratio}, alpha={self.alpha}, '
                f'meta_filter={self.meta_filter}, motion={self.motion}, '
                f'fuse_init={self.fuse_init!r}, tau={self.tau}')


class MergeSchedule(nn.Module):
    """Where and how a backbone merges its tokens (paper Fig. 2).

    Built from the backbone's ``merger`` config, e.g.::

        merger=dict(type='STTM', layers=(6, 9),
                    stages=('spatial', 'spatiotemporal'), ratio=0.5)

    A merge "at layer k" runs on the output of block ``k`` (1-based), so
    blocks ``1..k`` see the full token set. A ``'spatial'`` merge works inside
    each frame (frames batched, every frame keeps the same count); a
    ``'spatiotemporal'`` merge works over all remaining tokens, and its
    ``E`` is the previous merge's ``P``. ``ratio`` is one number or one per
    stage; every other key goes to the merger module, one per layer, each
    with its own parameters.

    Args:
        merger (dict): The config above.
        embed_dims (int): Channels of the backbone.
        depth (int): Number of blocks.
        frames (int): Frame groups of the input tokens (``T``, or
            ``T / tubelet`` for tubelet embeddings).
        per_frame (int): Tokens per frame group at the configured input size.
    """

    def __init__(self, merger: dict, embed_dims: int, depth: int, frames: int,
                 per_frame: int) -> None:
        super().__init__()
        if not isinstance(merger, dict):
            raise ValueError(f'merger must be a dict, got {type(merger)}')
        cfg = dict(merger)
        cfg.setdefault('type', 'STTM')
        if 'layers' not in cfg:
            raise ValueError('merger.layers is required, e.g. (6, 9)')
        layers = cfg.pop('layers')
        if isinstance(layers, int):
            layers = (layers, )
        layers = tuple(layers)
        if not layers or not all(
                isinstance(i, int) and not isinstance(i, bool)
                for i in layers):
            raise ValueError(
                f'merger.layers must be a non-empty list of ints, got '
                f'{layers!r}')
        if any(not 1 <= i < depth for i in layers):
            raise ValueError(f'merger.layers must lie in [1, {depth - 1}] '
                             f'(merge after block k of {depth}), got '
                             f'{layers!r}')
        if any(b <= a for a, b in zip(layers, layers[1:])):
            raise ValueError(
                f'merger.layers must be strictly increasing, got {layers!r}')
        default_stages = ('spatial', ) + ('spatiotemporal', ) * (
            len(layers) - 1)
        stages = cfg.pop('stages', default_stages)
        if isinstance(stages, str):
            raise ValueError(f'merger.stages must be a list with one stage '
                             f'per layer, e.g. ({stages!r}, ), got '
                             f'{stages!r}')
        stages = tuple(stages)
        if len(stages) != len(layers):
            raise ValueError(f'merger.stages needs one entry per layer: '
                             f'{len(layers)} layers, {len(stages)} stages')
        for stage in stages:
            if stage not in STAGES:
                raise ValueError(f'merger.stages entries must be one of '
                                 f'{STAGES}, got {stage!r}')
        if any(a == 'spatiotemporal' and b == 'spatial'
               for a, b in zip(stages, stages[1:])):
            raise ValueError('merger.stages: a spatial merge cannot follow a '
                             'spatiotemporal one (frames are gone)')
        ratio = cfg.pop('ratio', 0.5)
        ratios = tuple(ratio) if isinstance(ratio, (list, tuple)) else (
            ratio, ) * len(layers)
        if len(ratios) != len(layers):
            raise ValueError(f'merger.ratio needs one value or one per '
                             f'layer ({len(layers)}), got {ratio!r}')
        for r in ratios:
            _check_ratio(r, 'merger.ratio')
        merger_type = cfg['type']
        if isinstance(merger_type, str) and merger_type not in MODELS:
            raise ValueError(f'merger.type {merger_type!r} is not a '
                             'registered model (STTM or one of '
                             'mmaction_sttm.models.mergers)')
        self.track_sources = bool(cfg.pop('track_sources', False))
        self.layers = layers
        self.stages = stages
        modules: Dict[str, nn.Module] = {}
        for layer, r in zip(layers, ratios):
            try:
                modules[str(layer)] = MODELS.build(
                    dict(cfg, embed_dims=embed_dims, ratio=r))
            except ValueError as err:
                raise ValueError(f'merger: {err}') from err
            except TypeError as err:  # an unknown or mistyped key
                raise TypeError(f'merger: {err}') from err
        self.mergers = nn.ModuleDict(modules)
        self.counts = self._plan(frames, per_frame)

    def _plan(self, frames: int, per_frame: int) -> Tuple[int, ...]:
        """Token counts after each merge; fails if a merge leaves too few."""
        counts = []
        grouped = True
        for layer, stage in zip(self.layers, self.stages):
            merger = self.mergers[str(layer)]
            if stage == 'spatial':
                per_frame = merger.num_outputs(per_frame)
                total = per_frame * frames
            else:
                total = merger.num_outputs(per_frame * frames if grouped
                                           else per_frame)
                per_frame, frames, grouped = total, 1, False
            if per_frame < 2:
                raise ValueError(
                    f'merger: too few tokens left after layer {layer} '
                    f'({per_frame} per group); lower merger.ratio or merge '
                    f'less often')
            counts.append(total)
        return tuple(counts)

    def init_weights(self) -> None:
        """Let each merger apply its own initialisation (MMEngine does not
        reach modules inside a ``ModuleDict`` by itself)."""
        for merger in self.mergers.values():
            if hasattr(merger, 'init_weights'):
                merger.init_weights()

    def __contains__(self, layer: int) -> bool:
        return str(layer) in self.mergers

    def forward(self, layer: int, tokens: Tokens,
                cls: Optional[Tensor] = None) -> Tokens:
        """Merge ``tokens`` after block ``layer``.

        Args:
            layer (int): 1-based block index; must be one of ``self.layers``.
            tokens (Tokens): The backbone's tokens.
            cls (Tensor, optional): CLS token ``(B, D)`` for the meta filter.

        Returns:
            Tokens: The merged tokens.
        """
        merger = self.mergers[str(layer)]
        stage = self.stages[self.layers.index(layer)]
        x, pos, sizes = tokens.x, tokens.pos, tokens.sizes
        sources = tokens.sources
        if sources is None and self.track_sources:
            sources = torch.eye(
                x.shape[1], dtype=x.dtype, device=x.device).expand(
                    x.shape[0], -1, -1)
        batch, length, dims = x.shape
        if stage == 'spatial':
            if tokens.frames is None:
                raise ValueError('a spatial merge needs frame-grouped tokens')
            frames, per_frame = tokens.frames, tokens.per_frame
            x = x.reshape(batch * frames, per_frame, dims)
            pos = pos.expand(batch, -1, -1).reshape(batch * frames, per_frame,
                                                    dims)
            if sizes is not None:
                sizes = sizes.reshape(batch * frames, per_frame)
            if cls is not None:
                cls = cls.repeat_interleave(frames, dim=0)
            if sources is not None:
                # Block-diagonal per frame: keep only each frame's own block.
                src = sources.reshape(batch, -1, frames, per_frame)
                src = src.permute(0, 2, 1, 3).reshape(batch * frames, -1,
                                                      per_frame)
            else:
                src = None
            y, motion, sizes, src = merger(x, pos, sizes, cls, src)
            out_per_frame = y.shape[1]
            y = y.reshape(batch, frames * out_per_frame, dims)
            motion = motion.reshape(batch, frames * out_per_frame, dims)
            sizes = sizes.reshape(batch, frames * out_per_frame)
            if src is not None:
                src = src.reshape(batch, frames, -1, out_per_frame)
                sources = src.permute(0, 2, 1, 3).reshape(
                    batch, -1, frames * out_per_frame)
            return Tokens(y, motion, sizes, frames, sources)
        y, motion, sizes, sources = merger(x, pos, sizes, cls, sources)
        return Tokens(y, motion, sizes, None, sources)


def build_merge_schedule(merger: Optional[dict], embed_dims: int, depth: int,
                         frames: int,
                         per_frame: int) -> Optional[MergeSchedule]:
    """Build a :class:`MergeSchedule`, or return None when ``merger`` is None
    (the backbone then runs as its unmerged baseline)."""
    if merger is None:
        return None
    return MergeSchedule(merger, embed_dims, depth, frames, per_frame)


def size_weighted_mean(x: Tensor, sizes: Optional[Tensor]) -> Tensor:
    """Mean over tokens, each weighted by its size ``(B, L, D) -> (B, D)``."""
    if sizes is None:
        return x.mean(dim=1)
    w = sizes.unsqueeze(-1).to(x.dtype)
    return (x * w).sum(dim=1) / w.sum(dim=1)


def proportional_bias(sizes: Optional[Tensor], with_cls: bool,
                      dtype: torch.dtype) -> Optional[Tensor]:
    """Additive attention bias ``log(size)`` of the keys (ToMe's
    proportional attention), shaped ``(B, 1, 1, L)`` to broadcast over heads
    and queries; the CLS token counts as size one."""
    if sizes is None:
        return None
    bias = sizes.log()
    if with_cls:
        bias = torch.cat([bias.new_zeros(bias.shape[0], 1), bias], dim=1)
    return bias.to(dtype)[:, None, None, :]

