"""MMAction2's ``VisionTransformer`` (VideoMAE layout) with optional merging.

No CLS token: the meta filter of STTM ranks candidates by their similarity to
the mean token instead, and the final mean pooling becomes size-weighted so
that a merged token counts for every patch it stands for. Tokens come from
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

from mmaction_sttm.merging.tokens import Tokens
from mmaction_sttm.models.sttm import (build_merge_schedule,
                                       proportional_bias, size_weighted_mean)
from mmaction_sttm.registry import MODELS
from .utils import check_clip, interpolate_pos_embed


def _attention(attn: nn.Module, x: Tensor, bias: Optional[Tensor]) -> Tensor:
    """MMAction2's ViT ``Attention`` on fused SDPA, with an optional bias."""
    batch, length, dims = x.shape
    if hasattr(attn, 'q_bias'):
        qkv_bias = torch.cat(
            (attn.q_bias, torch.zeros_like(attn.v_bias), attn.v_bias))
        qkv = F.linear(x, attn.qkv.weight, qkv_bias)
    else:
        qkv = attn.qkv(x)
    q, k, v = qkv.reshape(batch, length, 3, attn.num_heads,
                          -1).permute(2, 0, 3, 1, 4).unbind(0)
    x = F.scaled_dot_product_attention(
        q, k, v, attn_mask=bias,
        dropout_p=attn.attn_drop.p if attn.training else 0.,
        scale=attn.scale)
    x = x.transpose(1, 2).reshape(batch, length, dims)
    return attn.proj_drop(attn.proj(x))


def _block(block: nn.Module, x: Tensor, bias: Optional[Tensor]) -> Tensor:
    """MMAction2's ViT ``Block`` with :func:`_attention`."""
    attn = _attention(block.attn, block.norm1(x), bias)
    if hasattr(block, 'gamma_1'):
        x = x + block.drop_path(block.gamma_1 * attn)
        return x + block.drop_path(block.gamma_2 * block.mlp(block.norm2(x)))
    x = x + block.drop_path(attn)
    return x + block.drop_path(block.mlp(block.norm2(x)))


@MODELS.register_module()
class VisionTransformerSTTM(VisionTransformer):
    """VideoMAE-style ViT with optional merging.

    Takes every argument of MMAction2's ``VisionTransformer`` and loads the
    same checkpoints, plus:

    Args:
        merger (dict, optional): Merge schedule and merger config, see
            :class:`~mmaction_sttm.models.sttm.MergeSchedule`. None runs the
            unmerged baseline.
        prop_attn (bool): Proportional attention after merges. Defaults to
            False.
    """

    def __init__(self,
                 *args,
                 merger: Optional[dict] = None,
                 prop_attn: bool = False,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        num_frames = kwargs.get('num_frames', 16)
        tubelet = kwargs.get('tubelet_size', 2)
        if merger is not None and self.return_feat_map:
            raise ValueError('return_feat_map=True needs the full token grid '
                             'and cannot be combined with merger')
        if merger is not None and self.fc_norm is None:
            raise ValueError('merging needs use_mean_pooling=True (there is '
                             'no CLS token to pool)')
        self.tubelet_size = tubelet
        self.prop_attn = prop_attn
        self.merge = build_merge_schedule(merger, self.embed_dims,
                                          len(self.blocks),
                                          num_frames // tubelet,
                                          self.grid_size[0] *
                                          self.grid_size[1])

    def _check_input(self, x: Tensor) -> None:
        proj = self.patch_embed.projection
        check_clip(x, type(self).__name__, proj.in_channels,
                   proj.kernel_size[1:], tubelet_size=proj.kernel_size[0])

    def forward_tokens(self, x: Tensor) -> Tuple[Tensor, List[Tokens]]:
        """Run the blocks and return the final tokens and every stage.

        Args:
            x (Tensor): Clips ``(B, C, T, H, W)``.

        Returns:
            tuple[Tensor, list[Tokens]]: The last block's tokens (after
            ``self.norm``) and the tokens after embedding and after each
            merge.
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
                interpolate_pos_embed(p[None], self.grid_size,
                                      (height, width)) for p in pos
            ], dim=1)
        frames = x.shape[1] // (height * width)
        if pos.shape[1] != x.shape[1]:
            raise ValueError(
                f'input gives {frames} tubelets of {height}x{width} patches '
                f'but the position embedding has {pos.shape[1]} entries; '
                f'set num_frames to the clip length')
        x = self.pos_drop(x + pos)
        tokens = Tokens(x, pos, frames=frames)
        stages = [tokens]
        bias = None
        for layer, block in enumerate(self.blocks, start=1):
            x = _block(block, x, bias)
            if self.merge is not None and layer in self.merge:
                tokens = self.merge(layer, tokens.replace(x=x))
                stages.append(tokens)
                x = tokens.x
                if self.prop_attn:
                    bias = proportional_bias(tokens.sizes, False, x.dtype)
        return self.norm(x), stages

    def forward(self, x: Tensor) -> Tensor:
        """Args:
            x (Tensor): Clips ``(B, C, T, H, W)``.

        Returns:
            Tensor: Pooled features ``(B, D)`` (size-weighted mean after
            merging).
        """
        if self.return_feat_map:
            self._check_input(x)
            return super().forward(x)
        x, stages = self.forward_tokens(x)
        if self.fc_norm is not None:
            return self.fc_norm(size_weighted_mean(x, stages[-1].sizes))
        return x[:, 0]
