"""The paper's video ViT (sec. 4.2), with optional token merging.

A plain ViT applied to video: every frame is cut into 2D patches, all
``T x N`` patch tokens plus one CLS token attend jointly, and each token gets a
learned spatial position embedding plus a learned temporal one (as in
K-centered patch sampling, ref. [41] of the paper). Parameter names follow
timm's ``VisionTransformer`` (``patch_embed.proj``, ``blocks.i.attn.qkv``,
...), so ImageNet weights convert by renaming almost nothing; the blocks
are timm's own ``Block`` modules, run through :func:`run_block` so that the
attention takes a packed batch video by video and hands its queries and
keys to a merger.
"""
from functools import partial
from typing import List, Optional, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmaction_sttm.functional.attention import AttentionBias, attention
from mmaction_sttm.functional.tokens import Tokens
from mmaction_sttm.registry import MODELS
from .base import Geometry, MergingBackbone, QKHandler
from .utils import (add_space_time_position, check_clip, interpolate_pos_embed,
                    pos_embed_resampler)


def timm_block(embed_dims: int, num_heads: int, mlp_ratio: float,
               qkv_bias: bool, drop: float, attn_drop: float, drop_path: float,
               norm_eps: float) -> nn.Module:
    """timm's pre-norm ViT ``Block`` (attention, MLP, LayerNorm, DropPath
    from ``timm.layers``), with plain ``nn.LayerNorm``: the block of the
    paper's ViT, whose parameter names (``norm1``, ``attn.qkv``,
    ``attn.proj``, ``norm2``, ``mlp.fc1``, ``mlp.fc2``) are timm's."""
    from timm.models.vision_transformer import Block
    return Block(
        embed_dims,
        num_heads,
        mlp_ratio=mlp_ratio,
        qkv_bias=qkv_bias,
        proj_drop=drop,
        attn_drop=attn_drop,
        drop_path=drop_path,
        norm_layer=partial(nn.LayerNorm, eps=norm_eps))


def block_qkv(block: nn.Module, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Queries (after the block's query norm), keys (after its key norm)
    and values ``(B, heads, L, d)`` of a timm ViT block on ``x``."""
    attn = block.attn
    batch, length, _ = x.shape
    qkv = attn.qkv(block.norm1(x)).reshape(batch, length, 3, attn.num_heads,
                                           attn.head_dim)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    return attn.q_norm(q), attn.k_norm(k), v


def run_block(block: nn.Module,
              x: Tensor,
              bias: AttentionBias = None,
              on_qk: Optional[QKHandler] = None) -> Tensor:
    """A timm ViT block, its attention through
    :func:`~mmaction_sttm.functional.attention.attention`
    (an additive bias, or a
    :class:`~mmaction_sttm.functional.attention.PackedBias`: each video to
    itself),
    handing its own queries and keys to ``on_qk`` before the MLP.

    Args:
        block (nn.Module): A block made by :func:`timm_block`.
        x (Tensor): ``(B, L, D)``.
        bias (Tensor | PackedBias, optional): Attention bias.
        on_qk (callable, optional): Called with the attention's queries,
            keys and scale (see :meth:`~.base.MergingBackbone.block`).

    Returns:
        Tensor: ``(B, L, D)``.
    """
    attn = block.attn
    batch, length, dims = x.shape
    q, k, v = block_qkv(block, x)
    out = attention(q, k, v, bias, attn.attn_drop.p if block.training else 0.)
    if on_qk is not None:
        on_qk(q, k, attn.scale)
    del q, k, v  # views of the whole qkv buffer: released before the MLP
    out = out.transpose(1, 2).reshape(batch, length, dims)
    norm = getattr(attn, 'norm', None)  # timm >= 1.0.2x; Identity unless
    if norm is not None:  # the block was built with scale_norm
        out = norm(out)
    out = attn.proj_drop(attn.proj(out))
    x = x + block.drop_path1(block.ls1(out))
    del out
    return x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))


class PatchEmbed(nn.Module):
    """Patch embedding ``(B, C, T, H, W) -> (B, T', N, D)``: per-frame 2D
    patches (``tubelet_size=1``, the paper's ViT), or patches of
    ``tubelet_size`` frames (a 3D convolution, as ViViT's and VideoMAE's
    tubelets)."""

    def __init__(self,
                 patch_size: int,
                 in_channels: int,
                 embed_dims: int,
                 tubelet_size: int = 1) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        if tubelet_size == 1:
            self.proj = nn.Conv2d(
                in_channels,
                embed_dims,
                kernel_size=patch_size,
                stride=patch_size)
        else:
            self.proj = nn.Conv3d(
                in_channels,
                embed_dims,
                kernel_size=(tubelet_size, patch_size, patch_size),
                stride=(tubelet_size, patch_size, patch_size))

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        batch, channels, frames, height, width = x.shape
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(f'input size {height}x{width} is not divisible '
                             f'by patch_size {self.patch_size}')
        if self.tubelet_size > 1:
            x = self.proj(x)  # (B, D, T', h, w)
            grid = x.shape[-2:]
            x = x.flatten(3).permute(0, 2, 3, 1)
            return x, tuple(grid)
        x = x.transpose(1, 2).reshape(batch * frames, channels, height, width)
        x = self.proj(x)
        grid = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        return x.reshape(batch, frames, -1, x.shape[-1]), tuple(grid)


@MODELS.register_module()
class SpaceTimeViT(MergingBackbone, BaseModule):
    """Video ViT with joint space-time attention and optional merging.

    Without ``merger`` it is the paper's ViT baseline; with it, merge modules
    (e.g. STTM) run after the configured blocks.

    Args:
        img_size (int): Training input size (sets the position grid).
            Defaults to 224.
        patch_size (int): Patch size. Defaults to 16.
        in_channels (int): Input channels. Defaults to 3.
        num_frames (int): Training frames (sets the temporal embedding).
            Defaults to 8.
        tubelet_size (int): Frames per patch. Defaults to 1 (the paper's
            ViT: 2D patches per frame); 2 embeds 2-frame tubelets with a
            3D convolution, as ViViT and VideoMAE do.
        embed_dims (int): Channels. Defaults to 768 (ViT-B).
        depth (int): Blocks. Defaults to 12.
        num_heads (int): Heads. Defaults to 12.
        mlp_ratio (float): FFN expansion. Defaults to 4.
        qkv_bias (bool): Bias in qkv. Defaults to True.
        drop_rate (float): Dropout. Defaults to 0.
        attn_drop_rate (float): Attention dropout. Defaults to 0.
        drop_path_rate (float): Stochastic depth, linear over blocks.
            Defaults to 0.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
        merger (dict, optional): Merge schedule and merger config, see
            :class:`~mmaction_sttm.models.merge_schedule.MergeSchedule`. None
            runs the unmerged baseline.
        prop_attn (bool): Proportional attention (``+ log(size)`` on the key
            logits) after merges. Defaults to False.
        reducer (dict, optional): A content-adaptive reducer before the
            first block (e.g. ``dict(type='RLT')``), see
            :meth:`~MergingBackbone.set_reducer`. Defaults to None.
        with_cp (bool): Activation checkpointing of the blocks in training
            (:attr:`~MergingBackbone.with_cp`). Defaults to False.
        batching (str): How a batch whose videos keep different token
            counts (after ``reducer``) runs: ``'padded'`` or ``'packed'``
            (the token-wise layers on the real tokens only), see
            :mod:`mmaction_sttm.functional.attention`. Defaults to
            ``'padded'``.
        pos_init_std (float): Std of the learned spatial position
            embedding's truncated-normal init. Defaults to 0.02 (timm's).
        pretrained (str, optional): Checkpoint in this layout (see
            ``tools/convert_weights.py``). Defaults to None.
        init_cfg (dict or list[dict], optional): Initialisation config.
    """

    # Its attention runs through functional.attention (a packed batch in one
    # call, each video to itself).
    attends_by_video = True

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        in_channels: int = 3,
        num_frames: int = 8,
        tubelet_size: int = 1,
        embed_dims: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.,
        qkv_bias: bool = True,
        drop_rate: float = 0.,
        attn_drop_rate: float = 0.,
        drop_path_rate: float = 0.,
        norm_eps: float = 1e-6,
        merger: Optional[dict] = None,
        prop_attn: bool = False,
        reducer: Optional[dict] = None,
        with_cp: bool = False,
        batching: str = 'padded',
        pos_init_std: float = 0.02,
        pretrained: Optional[str] = None,
        init_cfg: Optional[List[dict]] = [
            dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.),
            dict(type='Constant', layer='LayerNorm', val=1., bias=0.)
        ]
    ) -> None:
        if pretrained:
            init_cfg = dict(type='Pretrained', checkpoint=pretrained)
        super().__init__(init_cfg=init_cfg)
        if img_size % patch_size:
            raise ValueError(f'img_size ({img_size}) must be divisible by '
                             f'patch_size ({patch_size})')
        if tubelet_size < 1 or num_frames % tubelet_size:
            raise ValueError(f'num_frames ({num_frames}) must be a multiple '
                             f'of tubelet_size ({tubelet_size})')
        self.embed_dims = embed_dims
        self.num_frames = num_frames
        self.tubelet_size = tubelet_size
        steps = num_frames // tubelet_size
        self.grid = (img_size // patch_size, ) * 2
        num_patches = self.grid[0] * self.grid[1]
        self.patch_embed = PatchEmbed(patch_size, in_channels, embed_dims,
                                      tubelet_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dims))
        self.pos_embed = nn.Parameter(
            torch.zeros(1, num_patches + 1, embed_dims))
        self.time_embed = nn.Parameter(torch.zeros(1, steps, embed_dims))
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList([
            timm_block(embed_dims, num_heads, mlp_ratio, qkv_bias, drop_rate,
                       attn_drop_rate, dpr[i], norm_eps) for i in range(depth)
        ])
        self.norm = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.pos_init_std = pos_init_std
        self.with_cp = bool(with_cp)
        pos_embed_resampler()  # imported now, not inside a traced forward
        self.set_reducer(reducer, batching)
        self.set_merger(merger, prop_attn)

    def init_weights(self) -> None:
        """Initialise embeddings like timm / TimeSformer, then the rest (a
        ``Pretrained`` init_cfg is applied last by MMEngine)."""
        nn.init.trunc_normal_(self.pos_embed, std=self.pos_init_std)
        nn.init.trunc_normal_(self.cls_token, std=.02)
        nn.init.zeros_(self.time_embed)
        super().init_weights()

    @property
    def geometry(self) -> Geometry:
        return Geometry((self.patch_embed.patch_size, ) * 2, self.tubelet_size,
                        True)

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def block_modules(self) -> List[nn.Module]:
        return list(self.blocks)

    def merge_layout(self) -> Tuple[int, int]:
        return (self.num_frames // self.tubelet_size,
                self.grid[0] * self.grid[1])

    def embed(self,
              x: Tensor,
              track_sources: bool = False) -> Tuple[Tensor, Tokens]:
        """Patch-embed a clip and add position embeddings.

        Args:
            x (Tensor): Clips ``(B, C, T, H, W)``.
            track_sources (bool): Start a source map. Defaults to False.

        Returns:
            tuple[Tensor, Tokens]: The CLS token ``(B, 1, D)`` and the patch
            tokens, frame-major, with their position features ``E``.
        """
        proj = self.patch_embed.proj
        check_clip(x,
                   type(self).__name__, proj.in_channels,
                   tuple(proj.kernel_size[-2:]), self.tubelet_size)
        patches, grid = self.patch_embed(x)
        pos_s = interpolate_pos_embed(self.pos_embed[:, 1:], self.grid, grid)
        tokens, pos = add_space_time_position(patches, pos_s, self.time_embed)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(
            len(patches), -1, -1)
        return cls, Tokens.from_patches(
            self.pos_drop(tokens), pos, patches.shape[1], track_sources)

    def block(self,
              index: int,
              x: Tensor,
              tokens: Tokens,
              bias: AttentionBias,
              on_qk: Optional[QKHandler] = None) -> Tensor:
        return run_block(self.blocks[index], x, bias, on_qk)

    def block_qk(self, index: int, x: Tensor,
                 tokens: Tokens) -> Tuple[Tensor, Tensor, float]:
        q, k, _ = block_qkv(self.blocks[index], x)
        return q, k, self.blocks[index].attn.scale

    def final_norm(self, x: Tensor) -> Tensor:
        return self.norm(x)
