"""STTM inside image ViTs from other libraries, applied to video by config.

The paper's video ViT (sec. 4.2) is an image ViT run on all ``T x N`` patch
tokens of a clip at once: each frame is patch-embedded on its own, tokens
get the image model's spatial position embedding plus a learned temporal
one, and one CLS token attends jointly with every patch. The classes here
do that with a foreign image model's own modules (patch embedding, position
embedding, CLS token, blocks, final norm), so its ImageNet weights load
through that library's own loading path and nothing is converted:

- ``mmpretrain_vit.py``: mmpretrain's ``VisionTransformer``, built through
  its registry (``type='mmpretrain.VisionTransformer'``);
- ``timm_vit.py``: a timm ``VisionTransformer``, built with
  ``timm.create_model``.

Each adapter is one file of short methods saying where that family keeps
its parts (as ToMe's per-family patch files do); the video logic lives once
in :class:`ImageViTVideo`, and the block loop in
:class:`~mmaction_sttm.models.backbones.base.MergingBackbone`. With
``merger=None``, one frame and the temporal
embedding at its zero initialisation, the output is the image model's own
CLS feature.
"""
from abc import abstractmethod
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.model.weight_init import initialize
from torch import Tensor, nn

from mmaction_sttm.functional.tokens import Tokens
from .base import Geometry, MergingBackbone, QKHandler, unwrapped
from .utils import add_space_time_position


def qk_rows(qkv: nn.Linear, x: Tensor) -> Tensor:
    """The query and key rows of a packed ``qkv`` layer on ``x``
    ``(B, N, 2D)``, without computing the values."""
    dims = qkv.out_features // 3
    bias = None if qkv.bias is None else qkv.bias[:2 * dims]
    return F.linear(x, qkv.weight[:2 * dims], bias)


def split_qk(packed: Tensor, num_heads: int,
             head_dim: int) -> Tuple[Tensor, Tensor]:
    """Queries and keys ``(B, heads, N, d)`` from the output of a packed
    ``qkv`` layer ``(B, N, 3D)``, or of its query and key rows only
    ``(B, N, 2D)`` (:func:`qk_rows`)."""
    batch, length = packed.shape[:2]
    heads = packed.reshape(batch, length, -1, num_heads, head_dim)
    return heads[:, :, 0].transpose(1, 2), heads[:, :, 1].transpose(1, 2)


class QKTap:
    """Forward hook on the packed ``qkv`` layer of a block that a merge
    follows.

    While :attr:`fn` is set, the hook hands the layer's output to it as
    soon as the block computes it; the backbone sets ``fn`` to pass the
    queries and keys on to the block's ``on_qk`` (see
    :meth:`~.base.MergingBackbone.block`). The queries and keys are then
    neither computed a second time nor kept alive through the MLP. The hook
    is registered once, when the merger is set, on the wrapped model's own
    layer instance (no class is changed), and ``torch.compile`` traces it
    into the graph.
    """

    def __init__(self) -> None:
        self.fn: Optional[Callable[[Tensor], None]] = None

    def __call__(self, module: nn.Module, args: tuple, output: Tensor) -> None:
        if self.fn is not None:
            self.fn(output)


class ImageViTVideo(MergingBackbone, BaseModule):
    """Video ViT with joint space-time attention around an image ViT.

    Subclasses build the image model and say where its parts are; this
    class adds the temporal embedding (zeros at initialisation, so a
    pretrained image model starts out unchanged on every frame) and the
    merge schedule.

    Args:
        vit (nn.Module): The image model.
        num_frames (int): Training frames (sets the temporal embedding;
            other clip lengths resample it linearly). Defaults to 8.
        merger (dict, optional): Merge schedule and merger config, see
            :class:`~mmaction_sttm.models.merge_schedule.MergeSchedule`. None
            runs the unmerged baseline.
        prop_attn (bool): Proportional attention after merges, if the
            family's blocks take an attention bias. Defaults to False.
        reducer (dict, optional): A content-adaptive reducer before the
            first block (e.g. ``dict(type='RLT')``), if the family's blocks
            take an attention bias. Defaults to None.
        with_cp (bool): Activation checkpointing of the blocks in training
            (:attr:`~.base.MergingBackbone.with_cp`). Defaults to False.
        batching (str): How a batch whose videos keep different token
            counts (after ``reducer``) runs: ``'padded'`` or ``'packed'``
            (the token-wise layers on the real tokens only), see
            :mod:`mmaction_sttm.functional.attention`. Defaults to
            ``'padded'``.
        init_cfg (dict, optional): Initialisation of the whole wrapper (e.g.
            a video checkpoint); applied after the image model's own.
    """

    #: Whether the family's blocks take an additive attention bias.
    supports_attn_bias = False

    def __init__(self,
                 vit: nn.Module,
                 num_frames: int = 8,
                 merger: Optional[dict] = None,
                 prop_attn: bool = False,
                 reducer: Optional[dict] = None,
                 with_cp: bool = False,
                 batching: str = 'padded',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.with_cp = bool(with_cp)
        if not isinstance(num_frames, int) or num_frames < 1:
            raise ValueError(f'num_frames must be a positive int, got '
                             f'{num_frames!r}')
        self.vit = vit
        self.num_frames = num_frames
        self.time_embed = nn.Parameter(
            torch.zeros(1, num_frames, self.embed_dims))
        self._qk_taps: Dict[int, QKTap] = {}
        self.set_reducer(reducer, batching)
        self.set_merger(merger, prop_attn)

    def merge_layout(self) -> Tuple[int, int]:
        grid = self.image_grid
        return self.num_frames, grid[0] * grid[1]

    def _check_merger(self, merger: Optional[dict], prop_attn: bool) -> None:
        if prop_attn and not self.supports_attn_bias:
            raise ValueError(f'prop_attn=True needs blocks that take an '
                             f'attention bias; {type(self).__name__} blocks '
                             f'do not')

    def _merger_set(self) -> None:
        # The blocks before each merge hand their queries and keys to it.
        for index in range(len(self.blocks)):
            schedule = self.merge_schedule
            if schedule is not None and index + 1 in schedule:
                tap = QKTap()
                self.qkv_layer(index).register_forward_hook(tap)
                self._qk_taps[index] = tap

    # -- what an adapter provides ------------------------------------------
    @property
    @abstractmethod
    def embed_dims(self) -> int:
        """Channels ``D`` of the image model."""

    @property
    @abstractmethod
    def image_grid(self) -> Tuple[int, int]:
        """Patch grid of the image model's training size."""

    @property
    @abstractmethod
    def blocks(self) -> List[nn.Module]:
        """The transformer blocks, in order."""

    @property
    @abstractmethod
    def patch_size(self) -> Tuple[int, int]:
        """Patch height and width of the image model."""

    @property
    def geometry(self) -> Geometry:
        return Geometry(self.patch_size, 1, True)

    @abstractmethod
    def patchify(self, frames: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        """Patch tokens ``(F, N, D)`` of images ``(F, C, H, W)`` and their
        grid."""

    @abstractmethod
    def position(self, grid: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """Position embedding of the CLS token ``(1, 1, D)`` (zeros if the
        family adds none) and of a patch grid ``(1, N, D)``."""

    @abstractmethod
    def cls_token(self) -> Tensor:
        """The learned CLS token ``(1, 1, D)``."""

    @abstractmethod
    def pre_blocks(self, x: Tensor) -> Tensor:
        """What the family does between the position embedding and the
        first block (dropout, pre-norm) on ``(B, 1 + L, D)``."""

    @abstractmethod
    def image_block(self, block: Callable[..., Tensor], x: Tensor,
                    bias: Optional[Tensor]) -> Tensor:
        """One block on ``(B, 1 + L, D)`` with an optional attention bias
        ``(B, 1, 1, 1 + L)``; ``block`` is the image block's own forward."""

    @abstractmethod
    def qkv_layer(self, index: int) -> nn.Linear:
        """The packed ``qkv`` layer of block ``index``'s attention."""

    @abstractmethod
    def heads_qk(self, index: int,
                 packed: Tensor) -> Tuple[Tensor, Tensor, float]:
        """Block ``index``'s queries and keys ``(B, heads, 1 + L, d)``
        (after any query / key norms of the family) from the output of its
        ``qkv`` layer (or of its query and key rows), and the logit scale."""

    @abstractmethod
    def block_norm(self, index: int, x: Tensor) -> Tensor:
        """The norm block ``index`` applies before its attention."""

    @abstractmethod
    def final_norm(self, x: Tensor) -> Tensor:
        """The family's norm after the last block."""

    @abstractmethod
    def init_image_model(self) -> None:
        """Initialise (or load) the image model by the family's own rules."""

    # -- the video model ---------------------------------------------------
    def init_weights(self) -> None:
        """The image model by its own rules, the temporal embedding to zero,
        the mergers by theirs, then ``init_cfg`` (if given) on the whole.

        MMEngine's default recursion is not used: it would call a timm
        model's own ``init_weights`` and overwrite loaded ImageNet weights.
        """
        self.init_image_model()
        nn.init.zeros_(self.time_embed)
        if self.merge_schedule is not None:
            for merger in self.merge_schedule.mergers.values():
                merger.init_weights()
        if self.init_cfg:
            initialize(self, self.init_cfg)
        self._is_init = True

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def block_modules(self) -> List[nn.Module]:
        return self.blocks

    def block(self,
              index: int,
              x: Tensor,
              tokens: Tokens,
              bias: Optional[Tensor],
              on_qk: Optional[QKHandler] = None) -> Tensor:
        """The image model's block; its queries and keys reach ``on_qk``
        from the block's own ``qkv`` output, through the :class:`QKTap` on
        every block that a merge follows (elsewhere they are computed
        apart)."""
        tap = self._qk_taps.get(index)
        # Runs inside the block module's forward (MergingBlock): the image
        # block's own forward, not a second call of the (wrapped) module.
        own_forward = unwrapped(self.blocks[index]).forward
        if on_qk is not None and tap is None:
            on_qk(*self.block_qk(index, x, tokens))
        if on_qk is None or tap is None:
            return self.image_block(own_forward, x, bias)
        tap.fn = lambda packed: on_qk(*self.heads_qk(index, packed))
        try:
            return self.image_block(own_forward, x, bias)
        finally:
            tap.fn = None

    def block_qk(self, index: int, x: Tensor,
                 tokens: Tokens) -> Tuple[Tensor, Tensor, float]:
        return self.heads_qk(
            index, qk_rows(self.qkv_layer(index), self.block_norm(index, x)))

    def embed(self,
              x: Tensor,
              track_sources: bool = False) -> Tuple[Tensor, Tokens]:
        """Patch-embed a clip frame by frame and add position embeddings.

        Args:
            x (Tensor): Clips ``(B, C, T, H, W)``.
            track_sources (bool): Start a source map. Defaults to False.

        Returns:
            tuple[Tensor, Tokens]: The CLS token ``(B, 1, D)`` (after the
            family's pre-block steps) and the patch tokens with their
            position features ``E`` (frame-major).
        """
        batch, channels, frames, height, width = x.shape
        images = x.transpose(1, 2).reshape(batch * frames, channels, height,
                                           width)
        patches, grid = self.patchify(images)
        cls_pos, pos_s = self.position(grid)
        patches, pos = add_space_time_position(
            patches.reshape(batch, frames, *patches.shape[1:]), pos_s,
            self.time_embed)
        cls = (self.cls_token() + cls_pos).expand(batch, -1, -1)
        seq = self.pre_blocks(torch.cat([cls, patches], dim=1))
        return seq[:, :1], Tokens.from_patches(seq[:, 1:], pos, frames,
                                               track_sources)
