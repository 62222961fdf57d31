"""mmpretrain's ``VisionTransformer`` on video: everything this project
knows about that family (where it keeps its parts, its block, its queries
and keys). The video logic is :class:`~.image_vit.ImageViTVideo`'s."""
from typing import Callable, List, Optional, Tuple

from torch import Tensor, nn

from mmaction_sttm.registry import MODELS
from .image_vit import ImageViTVideo, split_qk
from .utils import plain_drop_probs


@MODELS.register_module()
class MergingMMPretrainViT(ImageViTVideo):
    """mmpretrain's ``VisionTransformer`` on video, with optional merging.

    Example::

        backbone=dict(
            type='MergingMMPretrainViT',
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
            raise ValueError(
                'vit: MergingMMPretrainViT needs a ViT with a CLS '
                'token (with_cls_token=True)')
        plain_drop_probs(model)  # no graph break under torch.compile
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
            self.vit.pos_embed,
            self.vit.patch_resolution,
            grid,
            mode=self.vit.interpolate_mode,
            num_extra_tokens=self.vit.num_extra_tokens)
        return pos[:, :1], pos[:, self.vit.num_extra_tokens:]

    def cls_token(self) -> Tensor:
        return self.vit.cls_token

    def pre_blocks(self, x: Tensor) -> Tensor:
        return self.vit.pre_norm(self.vit.drop_after_pos(x))

    @property
    def patch_size(self) -> Tuple[int, int]:
        return tuple(self.vit.patch_embed.projection.stride)

    def image_block(self, block: Callable[..., Tensor], x: Tensor,
                    bias: Optional[Tensor]) -> Tensor:
        return block(x)

    def qkv_layer(self, index: int) -> nn.Linear:
        return self.vit.layers[index].attn.qkv

    def heads_qk(self, index: int,
                 packed: Tensor) -> Tuple[Tensor, Tensor, float]:
        attn = self.vit.layers[index].attn
        q, k = split_qk(packed, attn.num_heads, attn.head_dims)
        return q, k, attn.head_dims**-0.5

    def block_norm(self, index: int, x: Tensor) -> Tensor:
        return self.vit.layers[index].ln1(x)

    def final_norm(self, x: Tensor) -> Tensor:
        return self.vit.ln1(x) if self.vit.final_norm else x

    def init_image_model(self) -> None:
        # mmpretrain's own init: applies a Pretrained init_cfg, else its
        # default initialisation.
        self.vit.init_weights()
