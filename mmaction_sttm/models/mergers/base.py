"""The one contract every merger implements.

A merger is a registered MMEngine ``BaseModule`` with one forward::

    merger(tokens, keys=None, cls_attn=None, cls=None,
           sharpness=None) -> Tokens

``tokens`` (:class:`~mmaction_sttm.functional.tokens.Tokens`) carries the
patch tokens, their position features, sizes and (when tracked) sources;
the other arguments are what the merger declares in :attr:`Merger.needs`,
computed by the backbone on the block just before the merge:

- ``'keys'``: the attention keys of that block, mean over heads
  ``(B, L, D / heads)`` (ToMe matches by them);
- ``'cls_attn'``: the CLS query's softmax attention to every patch token,
  mean over heads ``(B, L)`` (EViT; STTM's meta filter, sec. 3.2.1). A
  backbone without a CLS token gives the attention of the mean query;
- ``'cls'``: the CLS token's output ``(B, D)``, None without a CLS token
  (the cosine scores kept as options);
- ``'sharpness'``: how peaked each patch token's attention row is,
  ``sum_j a_ij log a_ij`` of the head-mean attention ``(B, L)`` (vid-TLDR's
  saliency, minus the entropy).

The merger's own step sees them as one :class:`Cues` value.

The base owns what every merger shares: ratio validation, the output count
(:meth:`Merger.num_outputs`), source tracking, input checks, and the message
when a checkpoint has no weights for a merger.
"""
import logging
import math
import numbers
from abc import abstractmethod
from typing import Any, List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor

from mmaction_sttm.functional.groups import group_mean, group_sum
from mmaction_sttm.functional.sttm import num_meta_tokens
from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.functional.tome import max_removable

#: What a merger may ask the backbone for.
NEEDS = ('keys', 'cls_attn', 'cls', 'sharpness')


class Cues(NamedTuple):
    """What the block before a merge gives the merger, each None unless
    the merger asked for it in :attr:`Merger.needs` (shapes in the module
    docstring)."""
    keys: Optional[Tensor] = None
    cls_attn: Optional[Tensor] = None
    cls: Optional[Tensor] = None
    sharpness: Optional[Tensor] = None


def is_real(value: Any) -> bool:
    """A finite real number, bools excluded (``True`` is not a ratio)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and math.isfinite(value)


def check_ratio(ratio: float, field: str = 'ratio') -> float:
    """Return ``ratio`` as a float, or raise ValueError naming ``field``."""
    if not is_real(ratio) or not 0 < ratio < 1:
        raise ValueError(f'{field} must be a number in (0, 1), got {ratio!r}')
    return float(ratio)


def check_choice(value: Any, choices: Tuple[str, ...], field: str) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ValueError
    naming ``field`` and listing the choices."""
    if value not in choices:
        raise ValueError(f'{field} must be one of {choices}, got {value!r}')
    return value


def num_kept(num_tokens: int, ratio: float) -> int:
    """``round(L * (1 - ratio))`` (halves up), at least 1: STTM's output
    count (eq. 1), which every merger shares so that one ratio means the
    same token budget for all of them."""
    return num_meta_tokens(int(num_tokens), ratio)


class MergeResult(NamedTuple):
    """What a merger's :meth:`Merger.merge` computes.

    Args:
        x (Tensor): Output tokens ``(B, L', D)``.
        pos (Tensor): Output position / motion features ``(B, L', D)``.
        sizes (Tensor): Output sizes ``(B, L')``.
        assign (Tensor): Row-stochastic map from inputs to outputs, dense
            ``(B, L, L')`` or, for a hard merge, the group index ``(B, L)``
            (long) of every input (``L'`` for padding: no output).
    """
    x: Tensor
    pos: Tensor
    sizes: Tensor
    assign: Tensor


def _report_absent_weights(merger: 'Merger', incompatible: Any) -> None:
    """When a checkpoint has none of a merger's weights, say so in one line
    instead of listing every key as missing (MMEngine's and torch's loaders
    call this after the merger and its children are loaded)."""
    prefix, absent = merger._absent_keys
    merger._absent_keys = ('', [])
    # Weights from a checkpoint count as trained; none leaves the merger at
    # its init until a training step (see Merger.forward).
    merger.untrained = bool(absent)
    if not absent:
        return
    for key in absent:
        if key in incompatible.missing_keys:
            incompatible.missing_keys.remove(key)
    print_log(
        f'{prefix.rstrip(".")}: no weights in the checkpoint; the '
        f'merger starts from its init ({merger.init_description()})',
        logger='current')


class Merger(BaseModule):
    """Base of every merger.

    Args:
        embed_dims (int): Channels ``D``.
        ratio (float): Merge ratio in (0, 1). Defaults to 0.5.
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    #: What the merger asks the backbone for (a subset of :data:`NEEDS`);
    #: set per instance when an option decides it.
    needs: Tuple[str, ...] = ()

    #: Whether the merger sits in a trained model at its init, with no
    #: training step since: set when a checkpoint has none of its weights
    #: or :func:`~mmaction_sttm.models.apply_merger` inserts it, cleared by
    #: loaded weights or a training forward.
    untrained: bool = False

    def __init__(self,
                 embed_dims: int,
                 ratio: float = 0.5,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(embed_dims, int) or isinstance(
                embed_dims, bool) or embed_dims < 1:
            raise ValueError(
                f'embed_dims must be a positive int, got {embed_dims!r}')
        self.embed_dims = embed_dims
        self.ratio = check_ratio(ratio)
        # (prefix, keys) of a load in progress that has none of ours.
        self._absent_keys: Tuple[str, List[str]] = ('', [])
        self.register_load_state_dict_post_hook(_report_absent_weights)

    @property
    def neutral_init(self) -> bool:
        """Whether the init leaves a trained model's tokens as they are
        apart from the merge itself (a parameter-free merger always does),
        so that the merger can be inserted into a trained model untrained.
        """
        return True

    def _note_untrained(self) -> None:
        """Once, the first time an untrained merger whose init is not
        neutral runs in inference: one warning line (what it needs and what
        to insert instead)."""
        self.untrained = False
        if self.neutral_init:
            return
        print_log(
            f'{type(self).__name__} runs untrained with '
            f'{self.init_description()}, which changes a trained '
            'model\'s tokens: this reading needs fine-tuning; to '
            "insert it into a trained model untrained, use "
            "fuse_init='identity'",
            logger='current',
            level=logging.WARNING)

    def num_outputs(self, num_tokens: int) -> int:
        """Number of tokens a merge of ``num_tokens`` tokens produces."""
        return num_kept(num_tokens, self.ratio)

    def outputs_per_video(self, tokens: Tokens) -> Tensor:
        """``(B,)`` long: :meth:`num_outputs` of each video's real token
        count (read from a table of every count up to ``L``, so that the
        rule is written once, in :meth:`num_outputs`)."""
        length = int(tokens.x.shape[1])
        if tokens.counts is None:
            return tokens.lengths().new_full((tokens.x.shape[0], ),
                                             self.num_outputs(length))
        table = torch.tensor([self.num_outputs(n) for n in range(length + 1)],
                             device=tokens.x.device)
        return table[tokens.counts]

    @abstractmethod
    def merge(self, tokens: Tokens, num_out: int, per_video: Tensor,
              cues: Cues) -> MergeResult:
        """The merger's own step.

        Args:
            tokens (Tokens): The input; with :attr:`~Tokens.counts`, a
                padded batch whose padding must never be picked, kept or
                pooled.
            num_out (int): Output slots, ``num_outputs(L)``.
            per_video (Tensor): ``(B,)`` each video's own output count
                (``num_outputs`` of its real tokens, at most ``num_out``);
                video ``b``'s outputs are its first ``per_video[b]`` slots,
                the rest padding of size zero.
            cues (Cues): What :attr:`needs` declares.
        """

    def forward(self,
                tokens: Tokens,
                keys: Optional[Tensor] = None,
                cls_attn: Optional[Tensor] = None,
                cls: Optional[Tensor] = None,
                sharpness: Optional[Tensor] = None) -> Tokens:
        """Merge ``L`` tokens into ``num_outputs(L)``.

        Args:
            tokens (Tokens): Input tokens ``(B, L, D)`` (no CLS token).
            keys (Tensor, optional): Keys ``(B, L, d)`` if in :attr:`needs`.
            cls_attn (Tensor, optional): CLS attention ``(B, L)`` if in
                :attr:`needs`.
            cls (Tensor, optional): CLS output ``(B, D)`` if in :attr:`needs`
                and the backbone has a CLS token.
            sharpness (Tensor, optional): Attention sharpness ``(B, L)`` if
                in :attr:`needs`.

        Returns:
            Tokens: The merged tokens; with ``sources`` and ``assign`` when
            the input carries ``sources``.
        """
        cues = Cues(keys, cls_attn, cls, sharpness)
        self._check_inputs(tokens, cues)
        if self.untrained:
            if self.training:
                self.untrained = False
            else:
                self._note_untrained()
        length = int(tokens.x.shape[1])
        per_video = self.outputs_per_video(tokens)
        out = self.merge(tokens, self.num_outputs(length), per_video, cues)
        sources = assign = None
        if tokens.sources is not None:
            assign = out.assign
            if assign.dim() == 2:
                # Padding's group is one past the last slot: dropped here.
                slots = int(out.x.shape[1])
                assign = F.one_hot(assign, slots + 1)[..., :slots]
            assign = assign.to(tokens.sources.dtype)
            sources = torch.bmm(tokens.sources, assign)
        counts = None if tokens.counts is None else per_video
        return Tokens(out.x, out.pos, out.sizes, tokens.frames, False, sources,
                      assign, counts)

    def _check_inputs(self, tokens: Tokens, cues: Cues) -> None:
        """Shapes only (no pass over the values): a mismatch is reported
        here, by name, and not as a matmul error further down."""
        name, dims = type(self).__name__, self.embed_dims
        x = tokens.x
        if x.dim() != 3 or x.shape[-1] != dims:
            raise ValueError(f'{name}: tokens.x must be (B, L, {dims}), got '
                             f'shape {tuple(x.shape)}')
        batch, length = x.shape[:2]
        pos = tokens.pos
        if pos.dim() != 3 or pos.shape[0] not in (1, batch) \
                or pos.shape[1:] != x.shape[1:]:
            raise ValueError(f'{name}: tokens.pos must be ({batch} or 1, '
                             f'{length}, {dims}), got {tuple(pos.shape)}')
        if tuple(tokens.sizes.shape) != (batch, length):
            raise ValueError(f'{name}: tokens.sizes must be ({batch}, '
                             f'{length}), got {tuple(tokens.sizes.shape)}')
        src = tokens.sources
        if src is not None and (src.dim() != 3 or src.shape[0] != batch
                                or src.shape[2] != length):
            raise ValueError(f'{name}: tokens.sources must be ({batch}, L0, '
                             f'{length}), got {tuple(src.shape)}')
        keys, cls = cues.keys, cues.cls
        for need in ('keys', 'cls_attn', 'sharpness'):
            if need in self.needs and getattr(cues, need) is None:
                raise ValueError(f'{name} needs {need} from the backbone '
                                 f'(needs={self.needs}); got None')
        if keys is not None and (keys.dim() != 3
                                 or tuple(keys.shape[:2]) != (batch, length)):
            raise ValueError(f'{name}: keys must be ({batch}, {length}, d), '
                             f'got {tuple(keys.shape)}')
        for need in ('cls_attn', 'sharpness'):
            value = getattr(cues, need)
            if value is not None and tuple(value.shape) != (batch, length):
                raise ValueError(f'{name}: {need} must be ({batch}, '
                                 f'{length}), got {tuple(value.shape)}')
        if cls is not None and tuple(cls.shape) != (batch, dims):
            raise ValueError(f'{name}: cls must be ({batch}, {dims}), got '
                             f'{tuple(cls.shape)}')

    def init_description(self) -> str:
        """How the merger's parameters start without a checkpoint (for the
        message of :meth:`_load_from_state_dict`)."""
        return 'its default init'

    def _load_from_state_dict(self, state_dict: dict, prefix: str,
                              local_metadata: dict, strict: bool,
                              missing_keys: list, unexpected_keys: list,
                              error_msgs: list) -> None:
        # A checkpoint of the unmerged backbone (the usual case: mergers are
        # inserted into a pretrained model) has none of the merger's keys.
        # The children (phi, fuse) report theirs missing after this call, so
        # the post hook below settles it once they have.
        own = [prefix + name for name in self.state_dict()]
        absent = own and not any(key in state_dict for key in own)
        self._absent_keys = (prefix, own if absent else [])
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def extra_repr(self) -> str:
        return f'ratio={self.ratio}'


class HardMerger(Merger):
    """Base of the parameter-free mergers: every input token joins exactly
    one output, as a (group, weight) assignment applied once to tokens,
    positions, sizes and sources alike.

    - sizes add up: an output's size is the sum of its group's sizes;
    - the source map stays row-stochastic (``sources @ one_hot(group)``).

    With :attr:`weighted_sizes` (vid-TLDR) an output's size is instead the
    sum of its group's weights, so that a token merged with weight 0 is
    dropped, size and all.

    In a padded batch (:attr:`~Tokens.counts` set) every video is merged on
    its real tokens alone, in one pass over the batch: an :meth:`assign`
    groups video ``b``'s tokens into its first ``per_video[b]`` slots, and
    padding joins no group.

    The assignment is a function of each sample alone (no randomness at
    inference), so results do not depend on the batch. On CUDA, scatter-adds
    sum in an arbitrary order, so repeated runs agree to float rounding;
    ``torch.use_deterministic_algorithms(True)`` makes them bitwise equal.
    """

    #: Whether an output's size is the sum of its group's weights rather
    #: than of its sizes.
    weighted_sizes: bool = False

    @abstractmethod
    def assign(self, tokens: Tokens, per_video: Tensor,
               cues: Cues) -> Tuple[Tensor, Optional[Tensor]]:
        """Decide one merge.

        Args:
            tokens (Tokens): Input tokens; the real ones of video ``b`` are
                its first ``tokens.lengths()[b]``.
            per_video (Tensor): ``(B,)`` each video's output count, below
                its token count for at least one video.
            cues (Cues): What :attr:`needs` declares.

        Returns:
            tuple[Tensor, Tensor | None]: The group index ``(B, L)`` of
            every token, in ``[0, per_video[b])`` for video ``b``'s real
            tokens (each group non-empty; padding's is ignored), and the
            weight ``(B, L)`` of every token inside its group (positive for
            at least one token per group); None weighs tokens by size. A
            video whose output count is its token count is left as it is,
            whatever its groups.
        """

    def merge(self, tokens: Tokens, num_out: int, per_video: Tensor,
              cues: Cues) -> MergeResult:
        x, sizes = tokens.x, tokens.sizes
        batch, length, dims = x.shape
        pos = tokens.pos.expand(batch, -1, -1)
        positions = torch.arange(length, device=x.device).expand(batch, -1)
        if tokens.counts is None and num_out >= length:
            return MergeResult(x, pos, sizes, positions)
        group, weights = self.assign(tokens, per_video, cues)
        if weights is None:
            weights = sizes
        # A video with nothing to merge keeps its tokens; padding goes to
        # one extra group past the last slot, dropped below.
        alone = (per_video >= tokens.lengths())[:, None]
        group = torch.where(alone, positions, group)
        weights = torch.where(alone, sizes.to(weights.dtype), weights)
        if tokens.counts is not None:
            group = torch.where(tokens.valid(), group,
                                torch.full_like(group, num_out))
        # One scatter for tokens and positions alike.
        merged = group_mean(
            torch.cat([x, pos.to(x.dtype)], dim=-1), group, num_out + 1,
            weights)[:, :num_out]
        y, pos_out = merged.split(int(dims), dim=-1)
        out_sizes = group_sum(
            weights.to(sizes.dtype) if self.weighted_sizes else sizes, group,
            num_out + 1)[:, :num_out]
        return MergeResult(y, pos_out, out_sizes, group)


class PairMerger(HardMerger):
    """Base of the mergers that pair tokens (ToMe, PiToMe, vid-TLDR): one
    step removes at most about half of the tokens, so ``ratio <= 0.5``
    (larger reductions merge after more layers), and the output count is
    :func:`num_kept`, or what the pairing leaves when it can remove fewer.

    Args:
        embed_dims (int): Channels ``D``.
        ratio (float): Fraction of the tokens one step removes, in
            ``(0, 0.5]``.
        init_cfg (dict, optional): MMEngine initialisation config.
    """

    def __init__(self,
                 embed_dims: int,
                 ratio: float = 0.5,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(embed_dims, ratio, init_cfg)
        if self.ratio > 0.5:
            raise ValueError(
                f'ratio must be <= 0.5 for {type(self).__name__} (one step '
                f'pairs tokens and removes at most half of them), got '
                f'{ratio!r}; merge after more layers with a smaller ratio '
                f'instead')

    @staticmethod
    def max_removable(num_tokens: int) -> int:
        """Most tokens one step can remove from ``num_tokens``."""
        return max_removable(num_tokens)

    def num_outputs(self, num_tokens: int) -> int:
        num_tokens = int(num_tokens)
        keep = num_kept(num_tokens, self.ratio)
        return max(keep, num_tokens - self.max_removable(num_tokens))
