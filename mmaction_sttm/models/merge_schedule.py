"""Where a backbone merges its tokens: the merge schedule (paper Fig. 2)."""
import difflib
import inspect
from typing import Dict, Optional, Tuple

import torch
from mmengine.model import BaseModule, ModuleDict
from torch import Tensor

from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.registry import MODELS
from .mergers.base import Merger, check_ratio

STAGES = ('spatial', 'spatiotemporal')
#: Keys of a backbone's ``merger`` dict that the schedule itself reads.
SCHEDULE_KEYS = ('type', 'layers', 'stages', 'ratio', 'track_sources')


def _closest(key: str, accepted: Tuple[str, ...]) -> str:
    match = difflib.get_close_matches(key, accepted, n=1)
    return f"; did you mean '{match[0]}'?" if match else ''


def _check_keys(cfg: dict) -> None:
    """Refuse an unknown merger type or key at build time, in one line that
    names it, lists what is accepted and suggests the closest."""
    merger_type = cfg['type']
    if isinstance(merger_type, str):
        if merger_type not in MODELS:
            names = sorted(MODELS.module_dict)
            raise ValueError(f'merger.type {merger_type!r} is not a '
                             f'registered model (STTM or one of '
                             f'mmaction_sttm.models.mergers)'
                             f'{_closest(merger_type, tuple(names))}')
        merger_cls = MODELS.get(merger_type)
    else:
        merger_cls = merger_type
    if not (isinstance(merger_cls, type) and issubclass(merger_cls, Merger)):
        raise ValueError(f'merger.type {merger_type!r} is not a Merger '
                         f'(mmaction_sttm.models.mergers)')
    params = inspect.signature(merger_cls.__init__).parameters
    # `layer` and `depth` come from the schedule, never from the config.
    own = tuple(
        name for name in params
        if name not in ('self', 'embed_dims', 'ratio', 'layer', 'depth'))
    accepted = SCHEDULE_KEYS + own
    for key in cfg:
        if key not in accepted:
            raise TypeError(f'merger: unknown key {key!r} for '
                            f'{merger_cls.__name__}; accepted: '
                            f'{", ".join(accepted)}'
                            f'{_closest(key, accepted)}')


def _block_diag(blocks: Tensor, batch: int) -> Tensor:
    """``(B * F, n, m)`` per-frame blocks as ``(B, F * n, F * m)``
    block-diagonal maps."""
    frames = blocks.shape[0] // batch
    rows, cols = blocks.shape[1:]
    out = blocks.new_zeros(batch, frames, rows, frames, cols)
    index = torch.arange(frames, device=blocks.device)
    out[:, index, :, index] = blocks.reshape(batch, frames, rows,
                                             cols).transpose(0, 1)
    return out.reshape(batch, frames * rows, frames * cols)


class MergeSchedule(BaseModule):
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

    The mergers sit in an MMEngine ``ModuleDict`` so that MMEngine's init
    recursion reaches them after the backbone's own ``init_cfg``; a merger
    re-applies its own init every time it is reached, so a backbone-wide
    init (e.g. ``TruncNormal`` on every ``Linear``) never replaces it,
    whatever the order of the calls.
    """

    def __init__(self, merger: dict, embed_dims: int, depth: int, frames: int,
                 per_frame: int) -> None:
        super().__init__()
        if not isinstance(merger, dict):
            raise ValueError(f'merger must be a dict, got {type(merger)}')
        cfg = dict(merger)
        cfg.setdefault('type', 'STTM')
        _check_keys(cfg)
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
        ratios = tuple(ratio) if isinstance(
            ratio, (list, tuple)) else (ratio, ) * len(layers)
        if len(ratios) != len(layers):
            raise ValueError(f'merger.ratio needs one value or one per '
                             f'layer ({len(layers)}), got {ratio!r}')
        for r in ratios:
            check_ratio(r, 'merger.ratio')
        self.track_sources = bool(cfg.pop('track_sources', False))
        self.layers = layers
        self.stages = stages
        modules: Dict[str, Merger] = {}
        # A merger whose settings depend on depth (PiToMe's margin) takes
        # `layer` and `depth`; no config gives them.
        merger_cls = cfg['type'] if not isinstance(cfg['type'], str) \
            else MODELS.get(cfg['type'])
        where = inspect.signature(merger_cls.__init__).parameters
        for layer, r in zip(layers, ratios):
            place = dict(layer=layer, depth=depth) if 'layer' in where \
                else {}
            try:
                modules[str(layer)] = MODELS.build(
                    dict(cfg, embed_dims=embed_dims, ratio=r, **place))
            except ValueError as err:
                raise ValueError(f'merger: {err}') from err
            except TypeError as err:  # an unknown or mistyped key
                raise TypeError(f'merger: {err}') from err
        self.mergers = ModuleDict(modules)
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
                total = merger.num_outputs(per_frame *
                                           frames if grouped else per_frame)
                per_frame, frames, grouped = total, 1, False
            if per_frame < 2:
                raise ValueError(
                    f'merger: too few tokens left after layer {layer} '
                    f'({per_frame} per group); lower merger.ratio or merge '
                    f'less often')
            counts.append(total)
        return tuple(counts)

    def __contains__(self, layer: int) -> bool:
        return str(layer) in self.mergers

    def needs(self, layer: int) -> Tuple[str, ...]:
        """What the merger after block ``layer`` asks the backbone for
        (empty when no merge follows that block)."""
        merger = self.mergers[str(layer)] if layer in self else None
        return tuple(merger.needs) if merger is not None else ()

    def forward(self,
                layer: int,
                tokens: Tokens,
                keys: Optional[Tensor] = None,
                cls_attn: Optional[Tensor] = None,
                cls: Optional[Tensor] = None,
                sharpness: Optional[Tensor] = None) -> Tokens:
        """Merge ``tokens`` after block ``layer``.

        Args:
            layer (int): 1-based block index; must be one of ``self.layers``.
            tokens (Tokens): The backbone's tokens.
            keys (Tensor, optional): Keys ``(B, L, d)`` of block ``layer``.
            cls_attn (Tensor, optional): CLS (or mean-query) attention
                ``(B, L)`` of block ``layer``.
            cls (Tensor, optional): CLS output ``(B, D)``.
            sharpness (Tensor, optional): Attention sharpness ``(B, L)`` of
                block ``layer``.

        Returns:
            Tokens: The merged tokens.
        """
        merger = self.mergers[str(layer)]
        if self.stages[self.layers.index(layer)] == 'spatiotemporal':
            return merger(
                tokens.replace(frames=None), keys, cls_attn, cls, sharpness)
        if tokens.frames is None:
            raise ValueError('a spatial merge needs frame-grouped tokens')
        # Frames become batch entries: every frame merges on its own.
        frames, per_frame = tokens.frames, tokens.per_frame
        batch = tokens.x.shape[0]

        def per_frame_view(value: Optional[Tensor]) -> Optional[Tensor]:
            if value is None:
                return None
            return value.expand(batch, *value.shape[1:]).reshape(
                batch * frames, per_frame, *value.shape[2:])

        def per_clip_view(value: Tensor) -> Tensor:
            return value.reshape(batch, -1, *value.shape[2:])

        track = tokens.sources is not None
        sources = None
        if track:
            sources = torch.eye(
                per_frame, dtype=tokens.sources.dtype,
                device=tokens.x.device).expand(batch * frames, -1, -1)
        inner = Tokens(
            per_frame_view(tokens.x), per_frame_view(tokens.pos),
            per_frame_view(tokens.sizes), None, tokens.on_grid, sources)
        out = merger(
            inner, per_frame_view(keys), per_frame_view(cls_attn),
            None if cls is None else cls.repeat_interleave(frames, dim=0),
            per_frame_view(sharpness))
        assign = full_sources = None
        if track:
            # One frame's merge is a block of the clip's block-diagonal map.
            assign = _block_diag(out.assign, batch)
            full_sources = torch.bmm(tokens.sources, assign)
        return Tokens(
            per_clip_view(out.x), per_clip_view(out.pos),
            per_clip_view(out.sizes), frames, False, full_sources, assign)


def build_merge_schedule(merger: Optional[dict], embed_dims: int, depth: int,
                         frames: int,
                         per_frame: int) -> Optional[MergeSchedule]:
    """Build a :class:`MergeSchedule`, or return None when ``merger`` is None
    (the backbone then runs as its unmerged baseline)."""
    if merger is None:
        return None
    return MergeSchedule(merger, embed_dims, depth, frames, per_frame)
