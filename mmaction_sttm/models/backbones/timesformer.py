"""MMAction2's TimeSformer with optional token merging.

Before the first merge every block is TimeSformer's divided space-time block
(temporal attention, then spatial attention per frame, then the FFN). A merge
breaks the ``patches x frames`` grid, so after it each block runs one global
attention over all remaining tokens with its *spatial* attention weights, and
its temporal attention is removed (DESIGN.md; this is where the paper's
121.6M -> 107.4M parameters come from).

All attention goes through ``nn.MultiheadAttention`` with
``need_weights=False`` (fused scaled-dot-product kernels) for the baseline and
the merged model alike, so speed comparisons between them are fair. With the
same weights, the baseline's output equals MMAction2's ``TimeSformer``.

Tokens are kept frame-major, ``b (t p) m`` (MMAction2 keeps ``b (p t) m``),
as every merging backbone keeps them; the divided blocks compute the same
rows in the same batches either way.

A merger that asks for keys or CLS attention after a divided block gets
those of the block's spatial attention: per frame, the keys of its patches
and the attention of the frame's copy of the CLS token to them.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from einops import rearrange
from mmaction.models.backbones import TimeSformer
from torch import Tensor, nn

from mmaction_sttm.functional.attention import attention_probs
from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.registry import MODELS
from .base import Geometry, MergingTwin, QKHandler
from .utils import (check_clip, interpolate_pos_embed, interpolate_time_embed,
                    plain_drop_probs, pos_embed_resampler)


def _mha_qk(attn: nn.MultiheadAttention,
            x: Tensor) -> Tuple[Tensor, Tensor, float]:
    """Queries and keys ``(B, heads, L, d)`` of a sequence-first MHA on
    batch-first ``x`` (its packed input projection, sliced)."""
    dims, heads = attn.embed_dim, attn.num_heads
    weight, bias = attn.in_proj_weight, attn.in_proj_bias
    q, k = (
        F.linear(x, weight[i * dims:(i + 1) * dims],
                 None if bias is None else bias[i * dims:(i + 1) * dims])
        for i in (0, 1))
    q, k = (
        t.reshape(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)
        for t in (q, k))
    return q, k, (dims // heads)**-0.5


def _joint_from_divided(per_frame: Tensor, frames: int) -> Tensor:
    """Spatial attention per frame ``(B * T, 1 + N, 1 + N)`` (CLS first in
    every frame) as one map over ``[cls, b (t p)]``: the CLS token's row is
    its mean over frames (the divided block averages the CLS outputs of the
    frames)."""
    batch = per_frame.shape[0] // frames
    num = per_frame.shape[-1] - 1
    per_frame = per_frame.reshape(batch, frames, num + 1, num + 1)
    out = per_frame.new_zeros(batch, 1 + frames * num, 1 + frames * num)
    out[:, 0, 0] = per_frame[:, :, 0, 0].mean(1)
    out[:, 0, 1:] = per_frame[:, :, 0, 1:].reshape(batch, -1) / frames
    for t in range(frames):
        rows = slice(1 + t * num, 1 + (t + 1) * num)
        out[:, rows, 0] = per_frame[:, t, 1:, 0]
        out[:, rows, rows] = per_frame[:, t, 1:, 1:]
    return out


def _mha(attn: nn.MultiheadAttention,
         x: Tensor,
         bias: Optional[Tensor] = None) -> Tensor:
    """Self-attention of a sequence-first MHA on batch-first ``x``."""
    h = x.transpose(0, 1)
    if bias is not None:
        # (B, 1, 1, L) -> (B * heads, L, L), the float mask MHA expects.
        batch, length = x.shape[0], x.shape[1]
        bias = bias.expand(batch, attn.num_heads, length,
                           length).reshape(batch * attn.num_heads, length,
                                           length)
    out = attn(h, h, h, need_weights=False, attn_mask=bias)[0]
    return out.transpose(0, 1)


def _mha_with_qk(attn: nn.MultiheadAttention, x: Tensor,
                 bias: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
    """:func:`_mha` computed from the MHA's own weights on fused SDPA, also
    returning its queries and keys ``(B, heads, L, d)``: the block before a
    merge hands them to the merger without a second projection."""
    batch, length, dims = x.shape
    qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias)
    q, k, v = qkv.reshape(batch, length, 3, attn.num_heads,
                          -1).permute(2, 0, 3, 1, 4).unbind(0)
    out = F.scaled_dot_product_attention(
        q,
        k,
        v,
        attn_mask=bias,
        dropout_p=attn.dropout if attn.training else 0.)
    out = attn.out_proj(out.transpose(1, 2).reshape(batch, length, dims))
    return out, q, k


@MODELS.register_module()
class MergingTimeSformer(MergingTwin, TimeSformer):
    """TimeSformer (divided space-time) with optional merging.

    Takes every argument of MMAction2's ``TimeSformer`` and loads the same
    checkpoints, plus ``merger`` and ``prop_attn`` (see
    :class:`~mmaction_sttm.models.backbones.base.MergingTwin`).
    """

    def _init_family(self) -> None:
        plain_drop_probs(self)  # no graph break under torch.compile
        pos_embed_resampler()  # imported now, not inside a traced forward
        self.grid = tuple(s // p for s, p in zip(self.patch_embed.img_size,
                                                 self.patch_embed.patch_size))

    def merge_layout(self) -> Tuple[int, int]:
        return self.num_frames, self.patch_embed.num_patches

    def _check_merger(self, merger: Optional[dict], prop_attn: bool) -> None:
        if merger is not None and \
                self.attention_type != 'divided_space_time':
            raise ValueError(f'{type(self).__name__} merges only with '
                             "attention_type='divided_space_time', got "
                             f'{self.attention_type!r}')

    def _check_reducer(self, reducer: dict) -> None:
        # Divided attention attends along the time axis of every patch
        # position and across the patches of every frame: both need the full
        # (frames x patches) grid, which a content-adaptive reducer removes.
        raise ValueError(
            f'{type(self).__name__} takes no reducer: its divided space-time '
            'attention needs every frame\'s full patch grid; run RLT with a '
            'joint space-time family (SpaceTimeViT, MergingVisionTransformer, '
            'MergingTimmViT)')

    def _merger_set(self) -> None:
        if self.merge_schedule is not None:
            # Blocks after the first merge attend globally with their spatial
            # attention; their temporal attention is never used, so drop it
            # (an Identity keeps the indices, and so the checkpoint keys, of
            # the spatial attention).
            for layer in self.transformer_layers.layers[self.merge_schedule.
                                                        layers[0]:]:
                layer.attentions[0] = nn.Identity()

    def _check_input(self, x: Tensor) -> None:
        check_clip(x,
                   type(self).__name__,
                   self.patch_embed.projection.in_channels,
                   self.patch_embed.patch_size)

    @property
    def geometry(self) -> Geometry:
        return Geometry(tuple(self.patch_embed.patch_size), 1, True)

    @property
    def num_blocks(self) -> int:
        return len(self.transformer_layers.layers)

    def block_modules(self) -> List[nn.Module]:
        return list(self.transformer_layers.layers)

    def embed(self,
              x: Tensor,
              track_sources: bool = False) -> Tuple[Tensor, Tokens]:
        """Patch-embed a clip and add the space and time embeddings.

        Returns:
            tuple[Tensor, Tokens]: The CLS token ``(B, 1, D)`` and the patch
            tokens, frame-major, with their position features ``E``.
        """
        self._check_input(x)
        batch = x.shape[0]
        patches = self.patch_embed(x)
        frames = patches.shape[0] // batch
        height, width = x.shape[-2:]
        grid = (height // self.patch_embed.patch_size[0],
                width // self.patch_embed.patch_size[1])
        pos_s = interpolate_pos_embed(self.pos_embed[:, 1:], self.grid, grid)
        pos_t = interpolate_time_embed(self.time_embed, frames)
        dims = patches.shape[-1]
        patches = self.drop_after_pos(patches + pos_s)
        patches = patches.reshape(batch, frames, -1, dims) + pos_t[:, :, None]
        patches = self.drop_after_time(patches)
        # E of the first merge: spatial + temporal embedding, frame-major.
        pos = (pos_s[:, None] + pos_t[:, :, None]).reshape(1, -1, dims)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(batch, -1, -1)
        return cls, Tokens.from_patches(
            patches.reshape(batch, -1, dims), pos, frames, track_sources)

    @staticmethod
    def _temporal(module: nn.Module, x: Tensor, frames: int) -> Tensor:
        """``DividedTemporalAttentionWithNorm`` on ``x = [cls, b (t p) m]``."""
        cls, patches = x[:, :1], x[:, 1:]
        batch, length, dims = patches.shape
        h = rearrange(patches, 'b (t p) m -> (b p) t m', t=frames)
        res = module.dropout_layer(
            module.proj_drop(_mha(module.attn, module.norm(h))))
        res = rearrange(
            module.temporal_fc(res), '(b p) t m -> b (t p) m', b=batch)
        return torch.cat([cls, patches + res], dim=1)

    @staticmethod
    def _spatial_input(module: nn.Module, x: Tensor, frames: int) -> Tensor:
        """The per-frame sequences ``(b t) (1 + p) m`` of the spatial
        attention, each led by a copy of the CLS token, normalised."""
        cls, patches = x[:, :1], x[:, 1:]
        batch, _, dims = patches.shape
        per_frame = patches.reshape(batch * frames, -1, dims)
        h = torch.cat([cls.repeat_interleave(frames, dim=0), per_frame], 1)
        return module.norm(h)

    @classmethod
    def _spatial(cls,
                 module: nn.Module,
                 x: Tensor,
                 frames: int,
                 with_qk: bool = False) -> Tuple[Tensor, Optional[tuple]]:
        """``DividedSpatialAttentionWithNorm`` on ``x = [cls, b (t p) m]``;
        with ``with_qk`` also its per-frame queries and keys."""
        batch, _, dims = x.shape
        h = cls._spatial_input(module, x, frames)
        qk = None
        if with_qk:
            res, *qk = _mha_with_qk(module.attn, h, None)
        else:
            res = _mha(module.attn, h)
        res = module.dropout_layer(module.proj_drop(res))
        res_cls = res[:, :1].reshape(batch, frames, dims).mean(1, True)
        res = res[:, 1:].reshape(batch, -1, dims)
        return x + torch.cat([res_cls, res], dim=1), qk

    @staticmethod
    def _global(module: nn.Module,
                x: Tensor,
                bias: Optional[Tensor],
                with_qk: bool = False) -> Tuple[Tensor, Optional[tuple]]:
        """Joint attention over all tokens with the spatial attention's
        weights (blocks after the first merge); with ``with_qk`` also its
        queries and keys."""
        qk = None
        if with_qk:
            res, *qk = _mha_with_qk(module.attn, module.norm(x), bias)
        else:
            res = _mha(module.attn, module.norm(x), bias)
        return x + module.dropout_layer(module.proj_drop(res)), qk

    def block(self,
              index: int,
              x: Tensor,
              tokens: Tokens,
              bias: Optional[Tensor],
              on_qk: Optional[QKHandler] = None) -> Tensor:
        # Divided space-time until the first merge breaks the patches x
        # frames grid, then one joint attention with the spatial weights.
        layer = self.transformer_layers.layers[index]
        temporal, spatial = layer.attentions
        with_qk = on_qk is not None
        if tokens.on_grid:
            x = self._temporal(temporal, x, tokens.frames)
            x, qk = self._spatial(spatial, x, tokens.frames, with_qk)
        else:
            x, qk = self._global(spatial, x, bias, with_qk)
        if with_qk:
            # The spatial attention's: per frame ``(B * T, heads, 1 + N,
            # d)`` in a divided block, over the sequence after a merge.
            on_qk(*qk,
                  (spatial.attn.embed_dim // spatial.attn.num_heads)**-0.5)
        # The queries and keys are views of the whole qkv buffer: released
        # before the FFN, so the block's peak memory is MMAction2's.
        del qk
        return layer.ffns[0](x)

    def block_qk(self, index: int, x: Tensor,
                 tokens: Tokens) -> Tuple[Tensor, Tensor, float]:
        """The spatial attention's queries and keys: per frame ``(B * T,
        heads, 1 + N, d)`` in a divided block (after its temporal step),
        over the whole sequence after the first merge."""
        temporal, spatial = self.transformer_layers.layers[index].attentions
        if tokens.on_grid:
            x = self._temporal(temporal, x, tokens.frames)
            return _mha_qk(spatial.attn,
                           self._spatial_input(spatial, x, tokens.frames))
        return _mha_qk(spatial.attn, spatial.norm(x))

    def block_attention(self, index: int, x: Tensor, tokens: Tokens,
                        bias: Optional[Tensor]) -> Tensor:
        """Divided blocks enter rollout by their spatial attention only (as
        is usual for TimeSformer rollout), laid out over the whole
        sequence; blocks after the first merge by their joint attention."""
        q, k, scale = self.block_qk(index, x, tokens)
        probs = attention_probs(q, k, scale, bias).mean(dim=1)
        if tokens.on_grid:
            return _joint_from_divided(probs, tokens.frames)
        return probs

    def final_norm(self, x: Tensor) -> Tensor:
        return self.norm(x)

    def forward(self, x: Tensor) -> Tensor:
        """Args:
            x (Tensor): Clips ``(B, C, T, H, W)``.

        Returns:
            Tensor: CLS features ``(B, D)``.
        """
        if self.attention_type != 'divided_space_time':
            self._check_input(x)
            # The parent's own forward (MergingBackbone's comes first).
            return TimeSformer.forward(self, x)
        x, stages = self.forward_tokens(x)
        return self.pool(x, stages[-1])
