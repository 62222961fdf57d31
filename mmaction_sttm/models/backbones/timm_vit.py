"""A timm ``VisionTransformer`` on video: everything this project knows
about that family (how to create and check it, where it keeps its parts,
its block, its queries and keys). The video logic is
:class:`~.image_vit.ImageViTVideo`'s.

timm is imported when such a model is built: ``import timm`` registers all
of timm's models (about a second), which registering this class should not
cost."""
import inspect
from typing import Callable, List, Optional, Tuple, Union

from torch import Tensor, nn

from mmaction_sttm.registry import MODELS
from .image_vit import ImageViTVideo, split_qk


class _TimmBlockTakesMask:
    """``True`` where timm's ViT ``Block.forward`` takes ``attn_mask``
    (timm >= 1.0.16); reads timm when first asked, not at import."""

    def __get__(self, obj: object, owner: type) -> bool:
        import timm
        return 'attn_mask' in inspect.signature(
            timm.models.vision_transformer.Block.forward).parameters


@MODELS.register_module()
class MergingTimmViT(ImageViTVideo):
    """A timm ``VisionTransformer`` on video, with optional merging.

    Example::

        backbone=dict(
            type='MergingTimmViT',
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

    # timm's ViT blocks take ``attn_mask`` from timm 1.0.16 on; before that
    # ``prop_attn=True`` is refused in one line (ImageViTVideo.__init__).
    supports_attn_bias = _TimmBlockTakesMask()

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
        import timm
        from timm.models.vision_transformer import \
            VisionTransformer as TimmVisionTransformer
        model_kwargs = dict(model_kwargs or {})
        if isinstance(pretrained, str):
            # custom_load=False: a local file is a torch state dict. In timm
            # 1.0.3 the default configs of the augreg models (.npz weights)
            # set custom_load, and timm would read the file as .npz.
            model_kwargs['pretrained_cfg_overlay'] = dict(
                file=pretrained, custom_load=False)
        vit = timm.create_model(
            model_name,
            pretrained=bool(pretrained),
            num_classes=0,
            **model_kwargs)
        if not isinstance(vit, TimmVisionTransformer):
            raise ValueError(f'model_name: {model_name!r} is a '
                             f'{type(vit).__name__}, not a timm '
                             f'VisionTransformer')
        MergingTimmViT.check(vit, f'model_name: {model_name!r}')
        return vit

    @staticmethod
    def check(vit: nn.Module, what: str) -> None:
        """Raise ``ValueError`` (starting with ``what``) if this wrapper
        cannot run the timm ViT ``vit``."""
        if vit.cls_token is None or vit.reg_token is not None \
                or vit.pos_embed is None:
            raise ValueError(f'{what} needs one CLS token, no register '
                             f'tokens and an absolute position embedding')
        if not isinstance(vit.patch_drop, nn.Identity):
            raise ValueError(f'{what}: patch_drop_rate would drop tokens '
                             'outside the merge schedule')

    @classmethod
    def from_model(cls, vit: nn.Module, **kwargs) -> 'MergingTimmViT':
        """Wrap a timm ``VisionTransformer`` that is already built (and
        usually trained), as ToMe's ``apply_patch`` takes one; every weight
        is kept and the classifier head is dropped (the recognizer's head
        classifies).

        Args:
            vit (nn.Module): A timm ``VisionTransformer`` instance; it
                becomes part of the result.
            **kwargs: See :class:`ImageViTVideo` (``num_frames``,
                ``merger``, ``prop_attn``, ``reducer``, ``batching``).

        Returns:
            MergingTimmViT: The video backbone around ``vit``.
        """
        from timm.models.vision_transformer import \
            VisionTransformer as TimmVisionTransformer
        if not isinstance(vit, TimmVisionTransformer):
            raise TypeError(f'from_model takes a timm VisionTransformer, '
                            f'got {type(vit).__name__}')
        cls.check(vit, f'{type(vit).__name__}')
        vit.reset_classifier(0)
        self = cls.__new__(cls)
        ImageViTVideo.__init__(self, vit, **kwargs)
        return self

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
            from timm.layers import resample_abs_pos_embed
            pos = resample_abs_pos_embed(
                pos,
                new_size=grid,
                old_size=self.image_grid,
                num_prefix_tokens=prefix)
        # no_embed_class (DeiT III): the CLS token gets no position.
        cls_pos = pos[:, :1] if prefix else pos.new_zeros(1, 1, pos.shape[-1])
        return cls_pos, pos[:, prefix:]

    def cls_token(self) -> Tensor:
        return self.vit.cls_token

    def pre_blocks(self, x: Tensor) -> Tensor:
        return self.vit.norm_pre(self.vit.pos_drop(x))

    @property
    def patch_size(self) -> Tuple[int, int]:
        return tuple(self.vit.patch_embed.patch_size)

    def image_block(self, block: Callable[..., Tensor], x: Tensor,
                    bias: Optional[Tensor]) -> Tensor:
        if bias is None:
            return block(x)
        return block(x, attn_mask=bias)

    def qkv_layer(self, index: int) -> nn.Linear:
        return self.vit.blocks[index].attn.qkv

    def heads_qk(self, index: int,
                 packed: Tensor) -> Tuple[Tensor, Tensor, float]:
        attn = self.vit.blocks[index].attn
        q, k = split_qk(packed, attn.num_heads, attn.head_dim)
        return attn.q_norm(q), attn.k_norm(k), attn.scale

    def block_norm(self, index: int, x: Tensor) -> Tensor:
        return self.vit.blocks[index].norm1(x)

    def final_norm(self, x: Tensor) -> Tensor:
        return self.vit.norm(x)

    def init_image_model(self) -> None:
        # timm initialised (or loaded) the model when it was created; its
        # own init_weights would overwrite loaded weights.
        pass
