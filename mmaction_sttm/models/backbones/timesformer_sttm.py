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
"""
from typing import List, Optional, Tuple

import torch
from einops import rearrange
from mmaction.models.backbones import TimeSformer
from torch import Tensor, nn

from mmaction_sttm.merging.tokens import Tokens
from mmaction_sttm.models.sttm import (build_merge_schedule,
                                       proportional_bias)
from mmaction_sttm.registry import MODELS
from .utils import (check_clip, interpolate_pos_embed,
                    interpolate_time_embed)


def _mha(attn: nn.MultiheadAttention, x: Tensor,
         bias: Optional[Tensor] = None) -> Tensor:
    """Self-attention of a sequence-first MHA on batch-first ``x``."""
    h = x.transpose(0, 1)
    if bias is not None:
        # (B, 1, 1, L) -> (B * heads, L, L), the float mask MHA expects.
        batch, length = x.shape[0], x.shape[1]
        bias = bias.expand(batch, attn.num_heads, length, length).reshape(
            batch * attn.num_heads, length, length)
    out = attn(h, h, h, need_weights=False, attn_mask=bias)[0]
    return out.transpose(0, 1)


@MODELS.register_module()
class TimeSformerSTTM(TimeSformer):
    """TimeSformer (divided space-time) with optional merging.

    Takes every argument of MMAction2's ``TimeSformer`` and loads the same
    checkpoints, plus:

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
        if merger is not None and \
                self.attention_type != 'divided_space_time':
            raise ValueError('TimeSformerSTTM merges only with '
                             "attention_type='divided_space_time', got "
                             f'{self.attention_type!r}')
        self.grid = tuple(s // p for s, p in zip(self.patch_embed.img_size,
                                                 self.patch_embed.patch_size))
        self.prop_attn = prop_attn
        self.merge = build_merge_schedule(merger, self.embed_dims,
                                          self.num_transformer_layers,
                                          self.num_frames,
                                          self.patch_embed.num_patches)
        if self.merge is not None:
            # Blocks after the first merge attend globally with their spatial
            # attention; their temporal attention is never used, so drop it
            # (an Identity keeps the indices, and so the checkpoint keys, of
            # the spatial attention).
            for layer in self.transformer_layers.layers[self.merge.layers[0]:]:
                layer.attentions[0] = nn.Identity()

    def _check_input(self, x: Tensor) -> None:
        check_clip(x, type(self).__name__,
                   self.patch_embed.projection.in_channels,
                   self.patch_embed.patch_size)

    def _embed(self, x: Tensor) -> Tuple[Tensor, Tokens]:
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
        tokens = Tokens(patches.reshape(batch, -1, dims), pos, frames=frames)
        return cls, tokens

    @staticmethod
    def _temporal(module: nn.Module, x: Tensor, frames: int) -> Tensor:
        """``DividedTemporalAttentionWithNorm`` on ``x = [cls, b (p t) m]``."""
        cls, patches = x[:, :1], x[:, 1:]
        batch, length, dims = patches.shape
        h = module.norm(patches.reshape(-1, frames, dims))
        res = module.dropout_layer(module.proj_drop(_mha(module.attn, h)))
        res = module.temporal_fc(res).reshape(batch, length, dims)
        return torch.cat([cls, patches + res], dim=1)

    @staticmethod
    def _spatial(module: nn.Module, x: Tensor, frames: int) -> Tensor:
        """``DividedSpatialAttentionWithNorm`` on ``x = [cls, b (p t) m]``."""
        cls, patches = x[:, :1], x[:, 1:]
        batch, _, dims = patches.shape
        per_frame = rearrange(patches, 'b (p t) m -> (b t) p m', t=frames)
        h = torch.cat([cls.repeat_interleave(frames, dim=0), per_frame], 1)
        res = module.dropout_layer(
            module.proj_drop(_mha(module.attn, module.norm(h))))
        res_cls = res[:, :1].reshape(batch, frames, dims).mean(1, True)
        res = rearrange(res[:, 1:], '(b t) p m -> b (p t) m', b=batch)
        return x + torch.cat([res_cls, res], dim=1)

    @staticmethod
    def _global(module: nn.Module, x: Tensor,
                bias: Optional[Tensor]) -> Tensor:
        """Joint attention over all tokens with the spatial attention's
        weights (blocks after the first merge)."""
        res = _mha(module.attn, module.norm(x), bias)
        return x + module.dropout_layer(module.proj_drop(res))

    def forward_tokens(self, x: Tensor) -> Tuple[Tensor, List[Tokens]]:
        """Run the blocks and return the final sequence and every stage.

        Args:
            x (Tensor): Clips ``(B, C, T, H, W)``.

        Returns:
            tuple[Tensor, list[Tokens]]: The normalised sequence (CLS first)
            and the tokens after embedding and after each merge.
        """
        cls, tokens = self._embed(x)
        frames = tokens.frames
        stages = [tokens]
        # TimeSformer's layout is patch-major: b (p t) m.
        patches = rearrange(tokens.x, 'b (t p) m -> b (p t) m', t=frames)
        x = torch.cat([cls, patches], dim=1)
        merged, bias = False, None
        for layer, block in enumerate(self.transformer_layers.layers, 1):
            temporal, spatial = block.attentions
            if merged:
                x = self._global(spatial, x, bias)
            else:
                x = self._temporal(temporal, x, frames)
                x = self._spatial(spatial, x, frames)
            x = block.ffns[0](x)
            if self.merge is not None and layer in self.merge:
                patches = x[:, 1:]
                if not merged:
                    patches = rearrange(
                        patches, 'b (p t) m -> b (t p) m', t=frames)
                tokens = self.merge(layer, tokens.replace(x=patches),
                                    cls=x[:, 0])
                stages.append(tokens)
                x = torch.cat([x[:, :1], tokens.x], dim=1)
                merged = True
                if self.prop_attn:
                    bias = proportional_bias(tokens.sizes, True, x.dtype)
        return self.norm(x), stages

    def forward(self, x: Tensor) -> Tensor:
        """Args:
            x (Tensor): Clips ``(B, C, T, H, W)``.

        Returns:
            Tensor: CLS features ``(B, D)``.
        """
        if self.attention_type != 'divided_space_time':
            self._check_input(x)
            return super().forward(x)
        return self.forward_tokens(x)[0][:, 0]
