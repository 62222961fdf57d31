"""MMAction2's ``VisionTransformer`` (VideoMAE layout) with optional merging.

No CLS token: a merger that asks for the CLS attention gets the attention of
the mean query (softmax of the mean of all queries against the keys, mean
over heads; the cosine options use the mean token), and the final mean
pooling becomes size-weighted so that a merged token counts for every patch
it stands for. Tokens come from
tubelets (``tubelet_size`` frames each); a spatial merge works inside each
temporal slice.

Attention runs on ``F.scaled_dot_product_attention`` for the baseline and the
merged model alike; with the same weights the baseline equals MMAction2's
module.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmaction.models.backbones import VisionTransformer
from torch import Tensor, nn

from mmaction_sttm.functional.attention import AttentionBias, attention
from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.registry import MODELS
from .base import Geometry, MergingTwin, QKHandler
from .utils import check_clip, interpolate_pos_embed, pos_embed_resampler


def _qkv(attn: nn.Module, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Queries, keys, values ``(B, heads, L, d)`` of MMAction2's ViT
    ``Attention``."""
    batch, length, _ = x.shape
    if hasattr(attn, 'q_bias'):
        qkv_bias = torch.cat(
            (attn.q_bias, torch.zeros_like(attn.v_bias), attn.v_bias))
        qkv = F.linear(x, attn.qkv.weight, qkv_bias)
    else:
        qkv = attn.qkv(x)
    return qkv.reshape(batch, length, 3, attn.num_heads,
                       -1).permute(2, 0, 3, 1, 4).unbind(0)


def _block(block: nn.Module,
           x: Tensor,
           bias: AttentionBias,
           on_qk: Optional[QKHandler] = None) -> Tensor:
    """MMAction2's ViT ``Block`` on fused SDPA, with an optional bias; hands
    its queries and keys to ``on_qk`` before the MLP and releases them, so
    that the block's peak memory is that of MMAction2's own block."""
    attn = block.attn
    batch, length, dims = x.shape
    q, k, v = _qkv(attn, block.norm1(x))
    out = attention(q, k, v, bias, attn.attn_drop.p if attn.training else 0.,
                    attn.scale)
    if on_qk is not None:
        on_qk(q, k, attn.scale)
    del q, k, v
    out = attn.proj_drop(
        attn.proj(out.transpose(1, 2).reshape(batch, length, dims)))
    if hasattr(block, 'gamma_1'):
        x = x + block.drop_path(block.gamma_1 * out)
        del out
        x = x + block.drop_path(block.gamma_2 * block.mlp(block.norm2(x)))
    else:
        x = x + block.drop_path(out)
        del out
        x = x + block.drop_path(block.mlp(block.norm2(x)))
    return x


@MODELS.register_module()
class MergingVisionTransformer(MergingTwin, VisionTransformer):
    """VideoMAE-style ViT with optional merging.

    Takes every argument of MMAction2's ``VisionTransformer`` and loads the
    same checkpoints, plus ``merger`` and ``prop_attn`` (see
    :class:`~mmaction_sttm.models.backbones.base.MergingTwin`).
    """

    # Its attention runs through functional.attention (a packed batch in one
    # call, each video to itself).
    attends_by_video = True

    def _init_family(self) -> None:
        self.tubelet_size = self.patch_embed.projection.kernel_size[0]
        pos_embed_resampler()  # imported now, not inside a traced forward

    def merge_layout(self) -> Tuple[int, int]:
        per_step = self.grid_size[0] * self.grid_size[1]
        return self.pos_embed.shape[1] // per_step, per_step

    def _check_merger(self, merger: Optional[dict], prop_attn: bool) -> None:
        if merger is not None and self.return_feat_map:
            raise ValueError('return_feat_map=True needs the full token grid '
                             'and cannot be combined with merger')
        if merger is not None and self.fc_norm is None:
            raise ValueError('merging needs use_mean_pooling=True (there is '
                             'no CLS token to pool)')

    def _check_input(self, x: Tensor) -> None:
        proj = self.patch_embed.projection
        check_clip(
            x,
            type(self).__name__,
            proj.in_channels,
            proj.kernel_size[1:],
            tubelet_size=proj.kernel_size[0])

    @property
    def geometry(self) -> Geometry:
        proj = self.patch_embed.projection
        return Geometry(
            tuple(proj.kernel_size[1:]), proj.kernel_size[0], False)

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def block_modules(self) -> List[nn.Module]:
        return list(self.blocks)

    def embed(self,
              x: Tensor,
              track_sources: bool = False) -> Tuple[None, Tokens]:
        """Tubelet-embed a clip and add the position embedding.

        Args:
            x (Tensor): Clips ``(B, C, T, H, W)``.
            track_sources (bool): Start a source map. Defaults to False.

        Returns:
            tuple[None, Tokens]: No CLS token, and the tokens (frame-major).
        """
        self._check_input(x)
        height = x.shape[-2] // self.patch_size
        width = x.shape[-1] // self.patch_size
        x = self.patch_embed(x)[0]
        pos = self.pos_embed
        if (height, width) != self.grid_size:
            grid = self.grid_size[0] * self.grid_size[1]
            pos = pos.reshape(-1, grid, self.embed_dims)
            pos = torch.cat([
                interpolate_pos_embed(p[None], self.grid_size, (height, width))
                for p in pos
            ],
                            dim=1)
        frames = x.shape[1] // (height * width)
        if pos.shape[1] != x.shape[1]:
            raise ValueError(
                f'input gives {frames} tubelets of {height}x{width} patches '
                f'but the position embedding has {pos.shape[1]} entries; '
                f'set num_frames to the clip length')
        return None, Tokens.from_patches(
            self.pos_drop(x + pos), pos, frames, track_sources)

    def block(self,
              index: int,
              x: Tensor,
              tokens: Tokens,
              bias: AttentionBias,
              on_qk: Optional[QKHandler] = None) -> Tensor:
        return _block(self.blocks[index], x, bias, on_qk)

    def block_qk(self, index: int, x: Tensor,
                 tokens: Tokens) -> Tuple[Tensor, Tensor, float]:
        block = self.blocks[index]
        q, k, _ = _qkv(block.attn, block.norm1(x))
        return q, k, block.attn.scale

    def final_norm(self, x: Tensor) -> Tensor:
        return self.norm(x)

    def forward(self, x: Tensor) -> Tensor:
        """Args:
            x (Tensor): Clips ``(B, C, T, H, W)``.

        Returns:
            Tensor: Pooled features ``(B, D)`` (size-weighted mean after
            merging).
        """
        if self.return_feat_map:
            self._check_input(x)
            # The parent's own forward (MergingBackbone's comes first).
            return VisionTransformer.forward(self, x)
        x, stages = self.forward_tokens(x)
        if self.fc_norm is not None:
            return self.fc_norm(self.pool(x, stages[-1]))
        return x[:, 0]
