"""The merging backbone: one block loop shared by every model family.

::

    clip -> embed -> block 1 .. k -> merge -> block k+1 .. -> norm -> pool
                  (the family's)  (a merger)             (the family's)

A family (one file each: the spacetime ViT, MMAction2's VideoMAE ViT,
TimeSformer, the timm and mmpretrain image ViTs) subclasses its own parent
class and :class:`MergingBackbone`, and implements only

- :meth:`~MergingBackbone.embed`: clip -> CLS token (or None) and
  :class:`~mmaction_sttm.functional.tokens.Tokens`;
- :meth:`~MergingBackbone.block`: one block on the sequence, with an
  optional additive attention bias;
- :meth:`~MergingBackbone.block_qk`: that block's attention queries and keys
  (for the keys / CLS attention a merger asks for, and for attention
  rollout);
- :meth:`~MergingBackbone.block_modules`: the block modules, which become
  :class:`MergingBlock` s so that each block step runs in its module's
  ``forward`` (where FSDP and activation checkpointing act);
- :meth:`~MergingBackbone.final_norm` and :meth:`~MergingBackbone.pool`;
- :attr:`~MergingBackbone.geometry`: patch size, tubelet, CLS or not;
- :meth:`~MergingBackbone.merge_layout` (temporal steps and patches per
  step) and :attr:`~MergingBackbone.num_blocks`, from which
  :meth:`~MergingBackbone.set_merger` builds the ``merge_schedule`` (a
  :class:`~mmaction_sttm.models.merge_schedule.MergeSchedule` or None) in
  the family's ``__init__``, or later through
  :func:`~mmaction_sttm.models.apply_merger`.

Everything about merging (when to merge, what the merger needs, the
proportional-attention bias, CLS handling, source tracking) is here, once.
"""
import functools
import warnings
from abc import ABCMeta, abstractmethod
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

import torch
from torch import Tensor

from mmaction_sttm.functional.attention import (AttentionBias, PackedBias,
                                                Packing, attention_probs,
                                                compiling, padding_bias,
                                                proportional_bias)
from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.models.merge_schedule import build_merge_schedule
from mmaction_sttm.models.reducers import build_reducer

#: The layouts of a batch of videos with different token counts.
BATCHING = ('padded', 'packed')

#: What a block hands a merger: ``on_qk(q, k, scale)``, its attention's
#: queries and keys ``(B', heads, N, d)`` and logit scale.
QKHandler = Callable[[Tensor, Tensor, float], None]


class Geometry(NamedTuple):
    """How a family cuts a clip into tokens.

    Args:
        patch_size (tuple[int, int]): Patch height and width in pixels.
        tubelet (int): Frames per token.
        has_cls (bool): Whether a CLS token leads the sequence.
    """
    patch_size: Tuple[int, int]
    tubelet: int
    has_cls: bool


class Trace(NamedTuple):
    """One forward pass, as the visualisation reads it.

    Args:
        sequence (Tensor): Normalised final sequence ``(B, [1 +] L, D)``.
        stages (list[Tokens]): Tokens after embedding and after each merge.
        attention (list[Tensor]): Each block's attention, mean over heads,
            ``(B, N, N)`` over its input sequence (CLS first when present);
            empty unless asked for.
    """
    sequence: Tensor
    stages: List[Tokens]
    attention: List[Tensor]


def size_weighted_mean(x: Tensor, sizes: Tensor) -> Tensor:
    """Mean over tokens, each weighted by its size ``(B, L, D) -> (B, D)``."""
    w = sizes.unsqueeze(-1).to(x.dtype)
    return (x * w).sum(dim=1) / w.sum(dim=1)


def attention_extras(q: Tensor,
                     k: Tensor,
                     scale: float,
                     bias: Optional[Tensor],
                     has_cls: bool,
                     need: Tuple[str, ...],
                     batch: int,
                     real: Optional[Tensor] = None) -> Dict[str, Tensor]:
    """What a merger asks of the block before it, from that block's queries
    and keys ``(B', H, N, d)`` (``B'`` a multiple of ``batch`` when the block
    attends per frame; frame-major results are folded back to ``batch``).

    - ``keys``: the patch tokens' keys, mean over heads (ToMe's metric);
    - ``cls_attn``: the CLS query's attention to every patch token, mean
      over heads (EViT, STTM sec. 3.2.1). Without a CLS token the query is
      the mean of all queries (of the real ones, given ``real``, the
      ``(B', N)`` mask of a padded batch): one query per head either way,
      computed beside the block's fused attention, not instead of it;
    - ``sharpness``: ``sum_j a_ij log a_ij`` of every patch query's
      head-mean attention row (vid-TLDR's saliency, the negative entropy):
      the block's whole attention map, recomputed one head at a time so
      that only one ``(B', N, N)`` map is held.

    Returns:
        dict: ``keys`` ``(batch, L, d)``, ``cls_attn`` ``(batch, L)`` and
        ``sharpness`` ``(batch, L)``, as requested in ``need``.
    """
    first = int(has_cls)
    out = {}
    if 'keys' in need:
        keys = k[:, :, first:].mean(dim=1)
        out['keys'] = keys.reshape(batch, -1, keys.shape[-1])
    if 'cls_attn' in need:
        if has_cls:
            query = q[:, :, :1]
        elif real is None:
            query = q.mean(dim=2, keepdim=True)
        else:
            w = real[:, None, :, None].to(q.dtype)
            query = (q * w).sum(
                dim=2, keepdim=True) / w.sum(
                    dim=2, keepdim=True)
        probs = attention_probs(query, k, scale, bias)[:, :, 0, first:]
        out['cls_attn'] = probs.mean(dim=1).reshape(batch, -1)
    if 'sharpness' in need:
        heads = int(q.shape[1])
        if bias is not None and bias.shape[-2] > 1:
            bias = bias[..., first:, :]  # the patch queries' rows
        rows = 0
        for head in range(heads):
            head_bias = bias if bias is None or bias.shape[1] == 1 else \
                bias[:, head:head + 1]
            rows = rows + attention_probs(q[:, head:head + 1,
                                            first:], k[:, head:head + 1],
                                          scale, head_bias)[:, 0]
        rows = rows / heads
        sharp = torch.special.xlogy(rows, rows).sum(dim=-1)
        out['sharpness'] = sharp.reshape(batch, -1)
    return out


class MergingBlock:
    """What every transformer block module of a merging backbone becomes: its
    own class with this mixin first, so that the backbone's step of that
    block (:meth:`MergingBackbone.block`, which calls the block's parts to
    hand its queries and keys to a merger) runs inside the block module's
    own ``forward``.

    That is what module wrappers act on: FSDP gathers a block's sharded
    parameters when the block module is called (a per-block FSDP unit), and
    MMEngine's ``activation_checkpointing`` recomputes a block module's
    forward. Called without ``block_step``, the module runs its class's own
    ``forward``, as before. The class keeps its name, and is a subclass of
    the original (``isinstance`` and wrap policies by type still hold);
    parameters, buffers and state-dict keys do not change.
    """

    def forward(self, *args, block_step: Optional[Callable] = None, **kwargs):
        """Run ``block_step(*args, **kwargs)``: the backbone's step of this
        block; without it the module's own forward."""
        if block_step is None:
            return super().forward(*args, **kwargs)
        return block_step(*args, **kwargs)

    def __reduce_ex__(self, protocol: int):
        # The class is made at run time: a pickle (``torch.save`` of a whole
        # model) names the block's own class and remakes this one from it.
        return _new_merging_block, (type(self).__bases__[1], ), \
            self.__getstate__()


def _new_merging_block(cls: type) -> 'MergingBlock':
    """An empty :class:`MergingBlock` of the block class ``cls`` (what an
    unpickled block starts as)."""
    block_cls = merging_block_class(cls)
    return block_cls.__new__(block_cls)


@functools.lru_cache(maxsize=None)
def merging_block_class(cls: type) -> type:
    """The :class:`MergingBlock` subclass of the block class ``cls`` (made
    once per class, with its name and module)."""
    if issubclass(cls, MergingBlock):
        return cls
    return type(cls.__name__, (MergingBlock, cls), {
        '__module__': cls.__module__,
        '__doc__': cls.__doc__
    })


def unwrapped(module: torch.nn.Module) -> torch.nn.Module:
    """The module inside the FSDP and activation-checkpointing wrappers that
    torch's ``wrap`` utilities put around it (itself if none)."""
    while True:
        inner = module._modules.get('_fsdp_wrapped_module') or \
            module._modules.get('_checkpoint_wrapped_module')
        if inner is None:
            return module
        module = inner


def is_merging_block(module: torch.nn.Module) -> bool:
    """Whether ``module`` is a transformer block of a merging backbone (the
    unit of per-block FSDP wrapping and activation checkpointing)."""
    return isinstance(module, MergingBlock)


class MergingBackbone(metaclass=ABCMeta):
    """Mixin that owns the block loop of every merging backbone; see the
    module docstring for what a family implements. It comes first in a
    family's bases, so that its :meth:`forward` is the family's unless the
    family defines one."""

    #: Whether the family's blocks take an additive attention bias
    #: (proportional attention; the padding masks of a reducer).
    supports_attn_bias = True
    #: Whether the family's attention goes through
    #: :func:`~mmaction_sttm.functional.attention.attention`, so that a
    #: packed batch attends each video to itself by the device's kernel
    #: (else through the dense block-diagonal mask over the whole packed
    #: sequence).
    attends_by_video = False
    #: Activation checkpointing of the blocks in training (MMAction2's
    #: ``with_cp``): each block's activations are recomputed in the
    #: backward pass instead of kept. The merges between blocks stay outside
    #: the checkpointed regions, so they run once. Set by the ``with_cp``
    #: argument of every family.
    with_cp = False
    #: How a batch whose videos keep different token counts (after a
    #: reducer) runs: ``'padded'`` (every layer on the padded batch, the
    #: padding masked) or ``'packed'`` (the token-wise layers on the real
    #: tokens only; see :mod:`mmaction_sttm.functional.attention`). Set by
    #: the ``batching`` argument of every family that takes a reducer.
    batching = 'padded'
    #: The packed attention kernel (None: the device's, see
    #: :data:`~mmaction_sttm.functional.attention.PACKED_KERNELS`).
    packed_kernel: Optional[str] = None
    #: How a model without a CLS token pools merged tokens: ``'size'``,
    #: each weighted by the patches it stands for (our reading), or
    #: ``'mean'``, all alike (padding excluded).
    token_pool = 'size'

    # -- what a family provides -------------------------------------------
    @property
    @abstractmethod
    def geometry(self) -> Geometry:
        """Patch size, tubelet and CLS of the family."""

    @property
    @abstractmethod
    def num_blocks(self) -> int:
        """Number of transformer blocks."""

    @abstractmethod
    def embed(self, x: Tensor,
              track_sources: bool) -> Tuple[Optional[Tensor], Tokens]:
        """Clips ``(B, C, T, H, W)`` -> the CLS token ``(B, 1, D)`` (None
        without one) and the patch tokens (frame-major, see
        :meth:`Tokens.from_patches`)."""

    @abstractmethod
    def block(self,
              index: int,
              x: Tensor,
              tokens: Tokens,
              bias: AttentionBias,
              on_qk: Optional[QKHandler] = None) -> Tensor:
        """Block ``index`` (0-based) on the sequence ``(B, [1 +] L, D)``,
        CLS first; ``tokens`` is the current stage (its ``frames`` and
        ``on_grid``), ``bias`` an :data:`AttentionBias` (a
        :class:`PackedBias` only for a family whose
        :attr:`attends_by_video` is set).

        ``on_qk`` is the one way a block offers a merger what it asks for
        (keys, CLS or mean-query attention): when given, the block calls it
        once with its attention's own queries, keys and logit scale, after
        the attention and before the FFN, and drops them then, so that
        nothing is computed twice and the block's peak memory is the
        unmerged block's."""

    @abstractmethod
    def block_modules(self) -> List[torch.nn.Module]:
        """The transformer block modules, in order (one per
        :meth:`block`)."""

    @abstractmethod
    def block_qk(self, index: int, x: Tensor,
                 tokens: Tokens) -> Tuple[Tensor, Tensor, float]:
        """Queries and keys ``(B', H, N, d)`` and the logit scale of block
        ``index``'s attention on its input sequence ``x``."""

    @abstractmethod
    def final_norm(self, x: Tensor) -> Tensor:
        """The family's norm after the last block."""

    @abstractmethod
    def merge_layout(self) -> Tuple[int, int]:
        """Temporal steps and patches per step of a training-size clip (what
        the merge schedule is built for)."""

    # -- the merge schedule's name ----------------------------------------
    @property
    def merge(self) -> Optional[torch.nn.Module]:
        """Deprecated name of :attr:`merge_schedule` (releases before
        2026-12)."""
        warnings.warn(
            'backbone.merge is deprecated; use backbone.merge_schedule',
            FutureWarning,
            stacklevel=2)
        return self.merge_schedule

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args,
                              **kwargs) -> None:
        """Load checkpoints written before the schedule's rename: their
        merger keys ``<prefix>merge.mergers.*`` are read as
        ``<prefix>merge_schedule.mergers.*``."""
        old = prefix + 'merge.'
        for key in [k for k in state_dict if k.startswith(old)]:
            state_dict[prefix + 'merge_schedule.' +
                       key[len(old):]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _init_family(self) -> None:
        """Set what the family adds to its parent class's attributes. Called
        by the family's ``__init__`` after its parent's, and by
        :func:`~mmaction_sttm.models.apply_merger` after it turns a built
        parent module into the family."""

    def _check_merger(self, merger: Optional[dict], prop_attn: bool) -> None:
        """Raise ``ValueError`` if this backbone cannot run ``merger`` /
        ``prop_attn`` (checked before anything changes)."""

    def _merger_set(self) -> None:
        """Adapt the family's modules to the new :attr:`merge_schedule`
        (e.g. drop what the merged blocks never run)."""

    def set_merger(self,
                   merger: Optional[dict],
                   prop_attn: bool = False) -> None:
        """Build the merge schedule for this backbone: the one way every
        family's ``__init__`` and
        :func:`~mmaction_sttm.models.apply_merger` give a backbone its
        merger.

        Args:
            merger (dict, optional): Merge schedule and merger config, see
                :class:`~mmaction_sttm.models.merge_schedule.MergeSchedule`.
                None runs the unmerged baseline.
            prop_attn (bool): Proportional attention after merges. Defaults
                to False.

        Raises:
            ValueError: The backbone merges already (set a merger on the
                unmerged model), or the family cannot run ``merger``.
        """
        if getattr(self, 'merge_schedule', None) is not None:
            raise ValueError(f'{type(self).__name__} has a merger already; '
                             'set one on the unmerged model')
        for module in self.block_modules():
            module.__class__ = merging_block_class(type(module))
        self._check_merger(merger, prop_attn)
        steps, per_step = self.merge_layout()
        schedule = build_merge_schedule(merger, self.embed_dims,
                                        self.num_blocks, steps, per_step)
        self._check_reduce_then_merge(getattr(self, 'reducer', None), schedule)
        self.prop_attn = prop_attn
        self.merge_schedule = schedule
        self._merger_set()

    def _check_reducer(self, reducer: dict) -> None:
        """Raise ``ValueError`` if this backbone cannot run ``reducer``.
        The default: blocks that take an attention bias (for the padding
        masks)."""
        if not self.supports_attn_bias:
            raise ValueError(f'reducer needs blocks that take an attention '
                             f'bias (to mask padding); {type(self).__name__} '
                             f'blocks do not')

    @staticmethod
    def _check_reduce_then_merge(reducer, schedule) -> None:
        if reducer is not None and schedule is not None \
                and 'spatial' in schedule.stages:
            raise ValueError(
                "merger.stages: a 'spatial' merge needs every frame's full "
                "patch grid, which a reducer removes; use 'spatiotemporal' "
                f'stages after a reducer, got {schedule.stages}')

    def set_reducer(self,
                    reducer: Optional[dict],
                    batching: Optional[str] = None) -> None:
        """Give the backbone a content-adaptive reducer before its first
        block (e.g. ``dict(type='RLT', threshold=0.1)``, see
        :class:`~mmaction_sttm.models.reducers.RLT`), or none, and the
        layout of the batches it makes.

        Args:
            reducer (dict, optional): The reducer config; None removes it.
            batching (str, optional): ``'padded'`` or ``'packed'`` (see
                :attr:`batching`); None keeps the backbone's.

        Raises:
            ValueError: The family cannot run a reducer, its merge
                schedule has a ``'spatial'`` stage, or ``batching`` is
                neither layout.
        """
        if reducer is not None and 'mode' in reducer:
            # The layout was the reducer's ``mode`` before 2026-12.
            warnings.warn(
                "reducer.mode is deprecated; set the backbone's batching "
                "('padded' or 'packed')",
                FutureWarning,
                stacklevel=2)
            reducer = dict(reducer)
            batching = reducer.pop('mode') if batching in (
                None, 'padded') else batching
        if batching is not None:
            if batching not in BATCHING:
                raise ValueError(f'backbone.batching must be one of '
                                 f'{BATCHING}, got {batching!r}')
            self.batching = batching
        if reducer is not None:
            self._check_reducer(reducer)
        module = build_reducer(reducer, self.embed_dims,
                               self.merge_layout()[0])
        self._check_reduce_then_merge(module,
                                      getattr(self, 'merge_schedule', None))
        self.reducer = module

    def pool(self, x: Tensor, tokens: Tokens) -> Tensor:
        """Features ``(B, D)`` of the normalised final sequence: the CLS
        token's, or without one the mean of the tokens, each weighted by its
        size (``token_pool='size'``) or all alike (``'mean'``)."""
        if self.geometry.has_cls:
            return x[:, 0]
        if tokens.on_grid:  # the baseline: exactly the parent's mean
            return x.mean(dim=1)
        if self.token_pool == 'mean':  # every real token alike
            return size_weighted_mean(x, tokens.valid().to(x.dtype))
        return size_weighted_mean(x, tokens.sizes)

    def run_block(
            self,
            index: int,
            x: Tensor,
            tokens: Tokens,
            bias: Optional[Tensor],
            need: Tuple[str, ...],
            packing: Optional[Packing] = None
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Block ``index`` and what the following merger needs of it
        (:func:`attention_extras` of the queries and keys that the block
        hands to its ``on_qk``). With ``packing``, the block runs on the
        packed sequence of the batch's real tokens and its results are
        unpacked."""
        extras: Dict[str, Tensor] = {}
        real = None if tokens.counts is None or self.geometry.has_cls \
            else tokens.valid()

        def take_extras(q: Tensor, k: Tensor, scale: float) -> None:
            if packing is not None:
                q, k = packing.unpack_heads(q), packing.unpack_heads(k)
            extras.update(
                attention_extras(q, k, scale, bias, self.geometry.has_cls,
                                 need, x.shape[0], real))

        on_qk = take_extras if {'keys', 'cls_attn', 'sharpness'} & set(need) \
            else None
        if packing is None:
            return self.checkpointed_block(index, x, tokens, bias,
                                           on_qk), extras
        packed_bias = PackedBias(packing) if self.attends_by_video \
            else packing.dense_bias
        out = self.checkpointed_block(index, packing.pack(x), tokens,
                                      packed_bias, on_qk)
        return packing.unpack(out), extras

    def checkpointed_block(self, index: int, x: Tensor, tokens: Tokens,
                           bias: AttentionBias,
                           on_qk: Optional[Callable]) -> Tensor:
        """:meth:`block`, run inside the block module's forward (see
        :class:`MergingBlock`; so that module wrappers such as per-block
        FSDP units act on it), under activation checkpointing when
        :attr:`with_cp` is set and gradients are being taken in training.

        The recomputation in the backward pass replays the block's random
        state (dropout, drop path), so it computes what the forward pass
        did; it calls ``on_qk`` again (the merger has used the first call's
        values by then, and the recomputation must save what the forward
        pass saved).

        Args:
            index (int): The block.
            x (Tensor): Its input sequence.
            tokens (Tokens): The tokens it holds.
            bias: The attention bias (or the packed segments).
            on_qk (Callable, optional): See :meth:`block`.

        Returns:
            Tensor: The block's output.
        """
        step = functools.partial(
            self.block_modules()[index], block_step=self.block)
        if not (self.with_cp and self.training and torch.is_grad_enabled()
                and x.requires_grad):
            out = step(index, x, tokens, bias, on_qk)
        else:
            out = torch.utils.checkpoint.checkpoint(
                step, index, x, tokens, bias, on_qk, use_reentrant=False)
        # A block unit that computes in lower precision (FSDP's mixed
        # precision of the block units) hands the sequence back in the dtype
        # it was given: merges, norm and head run in the model's. (Under
        # autocast a block's output is never narrower than its input.)
        if out.dtype != x.dtype and x.is_floating_point() and \
                torch.finfo(out.dtype).bits < torch.finfo(x.dtype).bits:
            out = out.to(x.dtype)
        return out

    def attention_bias(self, tokens: Tokens,
                       dtype: torch.dtype) -> Optional[Tensor]:
        """The additive key bias for ``tokens``: ``log(size)`` with
        proportional attention once tokens stand for several patches,
        the padding mask for a batch with :attr:`Tokens.counts`, else
        None."""
        has_cls = self.geometry.has_cls
        if self.prop_attn and not tokens.on_grid:
            return proportional_bias(tokens.sizes, has_cls, dtype)
        if tokens.counts is not None:
            return padding_bias(tokens.valid(), has_cls, dtype)
        return None

    def packing(self, tokens: Tokens,
                bias: Optional[Tensor]) -> Optional[Packing]:
        """A :class:`~mmaction_sttm.functional.attention.Packing` of
        ``tokens`` when the backbone packs (:attr:`batching`), the batch
        has padding and ``torch.compile`` is not tracing (where the padded
        layout runs, one graph for any set of lengths), else None."""
        if self.batching != 'packed' or tokens.counts is None or compiling():
            return None
        rows = tokens.valid()
        if self.geometry.has_cls:
            rows = torch.cat([rows.new_ones(rows.shape[0], 1), rows], dim=1)
        weighted = bool(self.prop_attn and not tokens.on_grid)
        return Packing(rows, bias, weighted, self.packed_kernel)

    def block_attention(self, index: int, x: Tensor, tokens: Tokens,
                        bias: Optional[Tensor]) -> Tensor:
        """Block ``index``'s attention on ``x``, mean over heads
        ``(B, N, N)`` (for attention rollout)."""
        q, k, scale = self.block_qk(index, x, tokens)
        return attention_probs(q, k, scale, bias).mean(dim=1)

    # -- the loop ------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        """Args:
            x (Tensor): Clips ``(B, C, T, H, W)``.

        Returns:
            Tensor: Features ``(B, D)`` (:meth:`pool` of the final
            sequence).
        """
        x, stages = self.forward_tokens(x)
        return self.pool(x, stages[-1])

    def forward_tokens(
            self,
            x: Tensor,
            track_sources: Optional[bool] = None
    ) -> Tuple[Tensor, List[Tokens]]:
        """Run the blocks and return the final sequence and every stage.

        Args:
            x (Tensor): Clips ``(B, C, T, H, W)``.
            track_sources (bool, optional): Carry the source map through the
                merges; None takes the schedule's ``track_sources``.

        Returns:
            tuple[Tensor, list[Tokens]]: The normalised sequence
            ``(B, [1 +] L, D)`` (CLS first when present) and the tokens after
            embedding and after each merge.
        """
        trace = self._run(x, track_sources, False)
        return trace.sequence, trace.stages

    def forward_trace(self, x: Tensor) -> Trace:
        """:meth:`forward_tokens` with sources tracked and every block's
        attention recorded (for the visualisation; eval mode is the
        caller's)."""
        return self._run(x, True, True)

    def _run(self, x: Tensor, track_sources: Optional[bool],
             record: bool) -> Trace:
        schedule = self.merge_schedule
        if track_sources is None:
            track_sources = bool(schedule and schedule.track_sources)
        has_cls = self.geometry.has_cls
        cls, tokens = self.embed(x, track_sources)
        reducer = getattr(self, 'reducer', None)
        if reducer is not None:
            geometry = self.geometry
            tokens = reducer(x, tokens, geometry.patch_size, geometry.tubelet)
        stages = [tokens]
        attention = []
        seq = tokens.x if cls is None else torch.cat([cls, tokens.x], dim=1)
        bias = self.attention_bias(tokens, seq.dtype)
        packing = self.packing(tokens, bias)
        for index in range(self.num_blocks):
            layer = index + 1
            need = schedule.needs(layer) if schedule is not None else ()
            if record:
                attention.append(
                    self.block_attention(index, seq, tokens, bias))
            seq, extras = self.run_block(index, seq, tokens, bias, need,
                                         packing)
            if schedule is None or layer not in schedule:
                continue
            cls_out = seq[:, 0] if has_cls and 'cls' in need else None
            tokens = schedule(
                layer,
                tokens.replace(x=seq[:, int(has_cls):]),
                cls=cls_out,
                **extras)
            stages.append(tokens)
            seq = tokens.x if not has_cls else torch.cat(
                [seq[:, :1], tokens.x], dim=1)
            bias = self.attention_bias(tokens, seq.dtype)
            packing = self.packing(tokens, bias)
        return Trace(self.final_norm(seq), stages, attention)


class MergingTwin(MergingBackbone):
    """A merging family that subclasses an MMAction2 backbone: it takes
    every argument of that parent, with the same parameter names (so the
    parent's checkpoints load), plus ``merger`` and ``prop_attn``. Listed
    first in the family's bases, before the parent.

    Args:
        *args, **kwargs: The parent backbone's arguments.
        merger (dict, optional): Merge schedule and merger config, see
            :class:`~mmaction_sttm.models.merge_schedule.MergeSchedule`. None
            runs the unmerged baseline.
        prop_attn (bool): Proportional attention after merges. Defaults to
            False.
        reducer (dict, optional): A content-adaptive reducer before the
            first block, see :meth:`MergingBackbone.set_reducer`. Defaults
            to None.
        with_cp (bool): Activation checkpointing of the blocks in training
            (:attr:`MergingBackbone.with_cp`). Defaults to False.
        batching (str): How a batch whose videos keep different token
            counts (after ``reducer``) runs: ``'padded'`` or ``'packed'``
            (the token-wise layers on the real tokens only), see
            :mod:`mmaction_sttm.functional.attention`. Defaults to
            ``'padded'``.
        token_pool (str): Without a CLS token, how the merged tokens are
            pooled: ``'size'`` (size-weighted mean) or ``'mean'`` (plain
            mean). Defaults to ``'size'``.
    """

    def __init__(self,
                 *args,
                 merger: Optional[dict] = None,
                 prop_attn: bool = False,
                 reducer: Optional[dict] = None,
                 with_cp: bool = False,
                 batching: str = 'padded',
                 token_pool: str = 'size',
                 **kwargs) -> None:
        if token_pool not in ('size', 'mean'):
            raise ValueError("token_pool must be 'size' or 'mean', got "
                             f'{token_pool!r}')
        super().__init__(*args, **kwargs)
        self.with_cp = bool(with_cp)
        self.token_pool = token_pool
        self._init_family()
        self.set_reducer(reducer, batching)
        self.set_merger(merger, prop_attn)
