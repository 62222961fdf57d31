"""STTM inside image ViTs from other libraries, applied to video by config.

The paper's video ViT (sec. 4.2) is an image ViT run on all ``T x N`` patch
tokens of a clip at once: each frame is patch-embedded on its own, tokens
get the image model's spatial position embedding plus a learned temporal
one, and one CLS token attends jointly with every patch. The classes here
do that with a foreign image model's own modules (patch embedding, position
embedding, CLS token, blocks, final norm), so its ImageNet weights load
through that library's own loading path and nothing is converted:

- :class:`MMPretrainViTSTTM` wraps mmpretrain's ``VisionTransformer``, built
  through its registry (``type='mmpretrain.VisionTransformer'``);
- :class:`TimmViTSTTM` wraps a timm ``VisionTransformer``, built with
  ``timm.create_model``.

Each adapter is a handful of short methods saying where that family keeps
its parts (as ToMe's per-family patch files do); the video logic lives once
in :class:`ImageViTVideo`. With ``merger=None``, one frame and the temporal
embedding at its zero initialisation, the output is the image model's own
CLS feature.
"""
from typing import List, Optional, Tuple, Union

import timm
import torch
from mmengine.model import BaseModule
from mmengine.model.weight_init import initialize
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import \
    VisionTransformer as TimmVisionTransformer
from torch import Tensor, nn

from mmaction_sttm.merging.tokens import Tokens
from mmaction_sttm.models.sttm import (build_merge_schedule,
                                       proportional_bias)
from mmaction_sttm.registry import MODELS
from .utils import interpolate_time_embed


class ImageViTVideo(BaseModule):
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
            :class:`~mmaction_sttm.models.sttm.MergeSchedule`. None runs the
            unmerged baseline.
        prop_attn (bool): Proportional attention after merges, if the
            family's blocks take an attention bias. Defaults to False.
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
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(num_frames, int) or num_frames < 1:
            raise ValueError(f'num_frames must be a positive int, got '
                             f'{num_frames!r}')
        if prop_attn and not self.supports_attn_bias:
            raise ValueError(f'prop_attn=True needs blocks that take an '
                             f'attention bias; {type(self).__name__} blocks '
                             f'do not')
        self.vit = vit
        dims = self.embed_dims
        self.num_frames = num_frames
        self.prop_attn = prop_attn
        self.time_embed = nn.Parameter(torch.zeros(1, num_frames, dims))
        grid = self.image_grid
        self.merge = build_merge_schedule(merger, dims, len(self.blocks),
                                          num_frames, grid[0] * grid[1])

    # -- what an adapter provides ------------------------------------------
    @property
    def embed_dims(self) -> int:
        """Channels ``D`` of the image model."""
        raise NotImplementedError

    @property
    def image_grid(self) -> Tuple[int, int]:
        """Patch grid of the image model's training size."""
        raise NotImplementedError

    @property
    def blocks(self) -> List[nn.Module]:
        """The transformer blocks, in order."""
        raise NotImplementedError

    def patchify(self, frames: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        """Patch tokens ``(F, N, D)`` of images ``(F, C, H, W)`` and their
        grid."""
        raise NotImplementedError

    def position(self, grid: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """Position embedding of the CLS token ``(1, 1, D)`` (zeros if the
        family adds none) and of a patch grid ``(1, N, D)``."""
        raise NotImplementedError

    def cls_token(self) -> Tensor:
        """The learned CLS token ``(1, 1, D)``."""
        raise NotImplementedError

    def pre_blocks(self, x: Tensor) -> Tensor:
        """What the family does between the position embedding and the
        first block (dropout, pre-norm) on ``(B, 1 + L, D)``."""
        raise NotImplementedError

    def run_block(self, block: nn.Module, x: Tensor,
                  bias: Optional[Tensor]) -> Tensor:
        """One block on ``(B, 1 + L, D)`` with an optional attention bias
        ``(B, 1, 1, 1 + L)``."""
        raise NotImplementedError

    def final_norm(self, x: Tensor) -> Tensor:
        """The family's norm after the last block."""
        raise NotImplementedError

    def init_image_model(self) -> None:
        """Initialise (or load) the image model by the family's own rules."""
        raise NotImplementedError

    # -- the video model ---------------------------------------------------
    def init_weights(self) -> None:
        """The image model by its own rules, the temporal embedding to zero,
        the mergers by theirs, then ``init_cfg`` (if given) on the whole.

        MMEngine's default recursion is not used: it would call a timm
        model's own ``init_weights`` and overwrite loaded ImageNet weights.
        """
        self.init_image_model()
        nn.init.zeros_(self.time_embed)
        if self.merge is not None:
            self.merge.init_weights()
        if self.init_cfg:
            initialize(self, self.init_cfg)
        self._is_init = True

    def embed(self, x: Tensor) -> Tuple[Tensor, Tokens]:
        """Patch-embed a clip frame by frame and add position embeddings.

        Args:
            x (Tensor): Clips ``(B, C, T, H, W)``.

        Returns:
            tuple[Tensor, Tokens]: The sequence ``(B, 1 + T * N, D)`` (CLS
            first, after the family's pre-block steps) and the patch tokens
            with their position features ``E`` (frame-major).
        """
        batch, channels, frames, height, width = x.shape
        images = x.transpose(1, 2).reshape(batch * frames, channels, height,
                                           width)
        patches, grid = self.patchify(images)
        per_frame, dims = patches.shape[1], patches.shape[2]
        cls_pos, pos_s = self.position(grid)
        pos_t = interpolate_time_embed(self.time_embed, frames)
        pos = (pos_t.unsqueeze(2) + pos_s.unsqueeze(1)).reshape(
            1, frames * per_frame, dims)
        patches = patches.reshape(batch, frames * per_frame, dims) + pos
        cls = (self.cls_token() + cls_pos).expand(batch, -1, -1)
        seq = self.pre_blocks(torch.cat([cls, patches], dim=1))
        return seq, Tokens(seq[:, 1:], pos, frames=frames)

    def forward_tokens(self, x: Tensor) -> Tuple[Tensor, List[Tokens]]:
        """Run the blocks and return the final sequence and every stage.

        Args:
            x (Tensor): Clips ``(B, C, T, H, W)``.

        Returns:
            tuple[Tensor, list[Tokens]]: The normalised sequence
            ``(B, 1 + L, D)`` (CLS first) and the tokens after embedding and
            after each merge.
        """
        x, tokens = self.embed(x)
        stages = [tokens]
        bias = None
        for layer, block in enumerate(self.blocks, start=1):
            x = self.run_block(block, x, bias)
            if self.merge is not None and layer in self.merge:
                tokens = self.merge(layer, tokens.replace(x=x[:, 1:]),
                                    cls=x[:, 0])
                stages.append(tokens)
                x = torch.cat([x[:, :1], tokens.x], dim=1)
                if self.prop_attn:
                    bias = proportional_bias(tokens.sizes, True, x.dtype)
        return self.final_norm(x), stages

    def forward(self, x: Tensor) -> Tensor:
        """Args:
            x (Tensor): Clips ``(B, C, T, H, W)``.

        Returns:
            Tensor: CLS features ``(B, D)``.
        """
        return self.forward_tokens(x)[0][:, 0]


@MODELS.register_module()
class MMPretrainViTSTTM(ImageViTVideo):
    """mmpretrain's ``VisionTransformer`` on video, with optional merging.

    Example::

        backbone=dict(
            type='MMPretrainViTSTTM',
            vit=dict(type='mmpretrain.VisionTransformer', arch='deit-small',
                     img_size=224, patch_size=16,
                     init_cfg=dict(type='Pretrained', checkpoint=CKPT,
                                   prefix='backbone.')),
            num_frames=8,
            merger=dict(type='STTM', layers=(6, 9), ratio=0.5))

    The image model loads its weights through its own ``init_cfg`` (and its
    own position-embedding resizing hook). Its blocks take no attention
    bias, so ``prop_attn`` is not available.

    Args:
        vit (dict): Config of the mmpretrain ``VisionTransformer`` (with a
            CLS token).
        **kwargs: See :class:`ImageViTVideo`.
    """

    def __init__(self, vit: dict, **kwargs) -> None:
        model = MODELS.build(vit)
        if getattr(model, 'cls_token', None) is None:
            raise ValueError('vit: MMPretrainViTSTTM needs a ViT with a CLS '
                             'token (with_cls_token=True)')
        super().__init__(model, **kwargs)

    @property
    def embed_dims(self) -> int:
        return self.vit.embed_dims

    @property
    def image_grid(self) -> Tuple[int, int]:
        return tuple(self.vit.patch_resolution)

    @property
    def blocks(self) -> List[nn.Module]:
        return list(self.vit.layers)

    def patchify(self, frames: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        patches, grid = self.vit.patch_embed(frames)
        return patches, tuple(grid)

    def position(self, grid: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        pos = self.vit.resize_pos_embed(
            self.vit.pos_embed, self.vit.patch_resolution, grid,
            mode=self.vit.interpolate_mode,
            num_extra_tokens=self.vit.num_extra_tokens)
        return pos[:, :1], pos[:, self.vit.num_extra_tokens:]

    def cls_token(self) -> Tensor:
        return self.vit.cls_token

    def pre_blocks(self, x: Tensor) -> Tensor:
        return self.vit.pre_norm(self.vit.drop_after_pos(x))

    def run_block(self, block: nn.Module, x: Tensor,
                  bias: Optional[Tensor]) -> Tensor:
        return block(x)

    def final_norm(self, x: Tensor) -> Tensor:
        return self.vit.ln1(x) if self.vit.final_norm else x

    def init_image_model(self) -> None:
        # mmpretrain's own init: applies a Pretrained init_cfg, else its
        # default initialisation.
        self.vit.init_weights()


@MODELS.register_module()
class TimmViTSTTM(ImageViTVideo):
    """A timm ``VisionTransformer`` on video, with optional merging.

    Example::

        backbone=dict(
            type='TimmViTSTTM',
            model_name='vit_base_patch16_224.augreg_in21k_ft_in1k',
            pretrained=CKPT,  # a local file, loaded by timm
            num_frames=8,
            merger=dict(type='STTM', layers=(6, 9), ratio=0.5))

    The model comes from ``timm.create_model`` without a classifier. Its
    weights load through timm's own path (``checkpoint_filter_fn``
    included): ``pretrained=True`` uses the model's default source,
    ``pretrained=PATH`` a local file (``pretrained_cfg_overlay=dict(
    file=PATH)``). Models with register tokens, without a CLS token or
    without an absolute position embedding are refused.

    Args:
        model_name (str): timm model name.
        pretrained (bool | str): False, True, or a local checkpoint file.
            Defaults to False.
        model_kwargs (dict, optional): More ``timm.create_model`` arguments
            (``img_size``, ``drop_path_rate``, ...).
        **kwargs: See :class:`ImageViTVideo`.
    """

    supports_attn_bias = True

    def __init__(self,
                 model_name: str,
                 pretrained: Union[bool, str] = False,
                 model_kwargs: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(
            self.create(model_name, pretrained, model_kwargs), **kwargs)

    @staticmethod
    def create(model_name: str,
               pretrained: Union[bool, str] = False,
               model_kwargs: Optional[dict] = None) -> nn.Module:
        """Create the timm model (weights loaded by timm) and check that
        this wrapper supports it."""
        model_kwargs = dict(model_kwargs or {})
        if isinstance(pretrained, str):
            model_kwargs['pretrained_cfg_overlay'] = dict(file=pretrained)
        vit = timm.create_model(
            model_name, pretrained=bool(pretrained), num_classes=0,
            **model_kwargs)
        if not isinstance(vit, TimmVisionTransformer):
            raise ValueError(f'model_name: {model_name!r} is a '
                             f'{type(vit).__name__}, not a timm '
                             f'VisionTransformer')
        if vit.cls_token is None or vit.reg_token is not None \
                or vit.pos_embed is None:
            raise ValueError(f'model_name: {model_name!r} needs one CLS '
                             f'token, no register tokens and an absolute '
                             f'position embedding')
        if not isinstance(vit.patch_drop, nn.Identity):
            raise ValueError('model_kwargs: patch_drop_rate would drop '
                             'tokens outside the merge schedule')
        return vit

    @property
    def embed_dims(self) -> int:
        return self.vit.embed_dim

    @property
    def image_grid(self) -> Tuple[int, int]:
        return tuple(self.vit.patch_embed.grid_size)

    @property
    def blocks(self) -> List[nn.Module]:
        return list(self.vit.blocks)

    def patchify(self, frames: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        patches = self.vit.patch_embed(frames)
        if patches.dim() == 4:  # NHWC (dynamic_img_size)
            grid = tuple(patches.shape[1:3])
            return patches.flatten(1, 2), grid
        grid = self.vit.patch_embed.dynamic_feat_size(frames.shape[-2:])
        return patches, tuple(grid)

    def position(self, grid: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        vit = self.vit
        prefix = 0 if vit.no_embed_class else vit.num_prefix_tokens
        pos = vit.pos_embed
        if tuple(grid) != self.image_grid:
            pos = resample_abs_pos_embed(
                pos, new_size=grid, old_size=self.image_grid,
                num_prefix_tokens=prefix)
        # no_embed_class (DeiT III): the CLS token gets no position.
        cls_pos = pos[:, :1] if prefix else pos.new_zeros(1, 1, pos.shape[-1])
        return cls_pos, pos[:, prefix:]

    def cls_token(self) -> Tensor:
        return self.vit.cls_token

    def pre_blocks(self, x: Tensor) -> Tensor:
        return self.vit.norm_pre(self.vit.pos_drop(x))

    def run_block(self, block: nn.Module, x: Tensor,
                  bias: Optional[Tensor]) -> Tensor:
        if bias is None:
            return block(x)
        return block(x, attn_mask=bias)

    def final_norm(self, x: Tensor) -> Tensor:
        return self.vit.norm(x)

    def init_image_model(self) -> None:
        # timm initialised (or loaded) the model when it was created; its
        # own init_weights would overwrite loaded weights.
        pass
