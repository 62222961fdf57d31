"""Position-embedding resampling, input checks and compile fixes shared by
the backbones."""
from typing import Any, Tuple

import torch.nn.functional as F
from torch import Tensor, nn


def pos_embed_resampler() -> Any:
    """timm's ``resample_abs_pos_embed``, imported on first use.

    Not at import: ``import timm`` registers all of timm's models (about a
    second), which importing this package should not cost. The backbones
    that resample call this when they are built, so that the import never
    happens inside a forward pass: under ``torch.jit.trace`` (MMEngine's and
    MMAction2's FLOP counters) importing timm, and with it torchvision,
    fails (``unsupported output type: int, from operator:
    torchvision::_cuda_version``).
    """
    from timm.layers import resample_abs_pos_embed
    return resample_abs_pos_embed


def interpolate_pos_embed(pos: Tensor, old_grid: Tuple[int, int],
                          new_grid: Tuple[int, int]) -> Tensor:
    """Resample a spatial position embedding to another patch grid
    (timm's ``resample_abs_pos_embed``: bicubic, no antialiasing, as the
    backbones always did).

    Args:
        pos (Tensor): ``(1, H0 * W0, D)`` embedding of the training grid.
        old_grid (tuple[int, int]): ``(H0, W0)``.
        new_grid (tuple[int, int]): ``(H, W)`` of the current input.

    Returns:
        Tensor: ``(1, H * W, D)``; ``pos`` itself when the grids match.
    """
    if tuple(old_grid) == tuple(new_grid):
        return pos
    resample_abs_pos_embed = pos_embed_resampler()
    return resample_abs_pos_embed(
        pos,
        new_size=list(new_grid),
        old_size=list(old_grid),
        num_prefix_tokens=0,
        antialias=False)


def interpolate_time_embed(time_embed: Tensor, frames: int) -> Tensor:
    """Resample a temporal embedding ``(1, T0, D)`` to ``frames`` steps
    (linear), as TimeSformer does for clips of another length."""
    if time_embed.shape[1] == frames:
        return time_embed
    out = F.interpolate(
        time_embed.transpose(1, 2),
        size=frames,
        mode='linear',
        align_corners=False)
    return out.transpose(1, 2)


def add_space_time_position(patches: Tensor, pos_s: Tensor,
                            time_embed: Tensor) -> Tuple[Tensor, Tensor]:
    """The paper's video position embedding (sec. 4.2): each patch token
    gets its spatial embedding plus its frame's learned temporal one. One
    function for every backbone that runs an image ViT on all ``T x N``
    tokens of a clip (:class:`~.spacetime_vit.SpaceTimeViT` and the
    :class:`~.image_vit.ImageViTVideo` wrappers).

    Args:
        patches (Tensor): Patch tokens ``(B, T, N, D)``, frame-major.
        pos_s (Tensor): Spatial embedding ``(1, N, D)`` of their grid.
        time_embed (Tensor): Temporal embedding ``(1, T0, D)``, resampled
            to ``T`` steps when ``T != T0``.

    Returns:
        tuple[Tensor, Tensor]: The tokens with their positions added
        ``(B, T * N, D)``, and the position features ``(1, T * N, D)``.
    """
    batch, frames, per_frame, dims = patches.shape
    pos_t = interpolate_time_embed(time_embed, frames)
    pos = (pos_t.unsqueeze(2) + pos_s.unsqueeze(1)).reshape(
        1, frames * per_frame, dims)
    return patches.reshape(batch, frames * per_frame, dims) + pos, pos


def check_clip(x: Any,
               owner: str,
               in_channels: int,
               patch_size: Tuple[int, int],
               tubelet_size: int = 1) -> None:
    """Check a backbone's input batch ``(B, C, T, H, W)`` by its shape.

    Called at the top of each backbone's forward, so that a wrong input is
    reported by name (and with the fix) instead of as a convolution, reshape
    or einops error further down, or, for sizes that are not a multiple of
    the patch, silently cropped by the patch convolution. Only the shape and
    dtype are read, never the values.

    Args:
        x (Any): The input.
        owner (str): Backbone name for the message.
        in_channels (int): Channels the patch embedding takes.
        patch_size (tuple[int, int]): Patch height and width.
        tubelet_size (int): Frames per token. Defaults to 1.

    Raises:
        TypeError: If ``x`` is not a floating-point tensor.
        ValueError: If its shape does not fit.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f'{owner} expects a tensor (B, C, T, H, W), got '
                        f'{type(x).__name__}')
    if not x.is_floating_point():
        raise TypeError(f'{owner} expects a floating-point clip, got dtype '
                        f'{x.dtype} (normalise it first, e.g. with '
                        'ActionDataPreprocessor)')
    shape = tuple(x.shape)
    if x.dim() != 5:
        raise ValueError(f'{owner} expects a 5-D clip batch (B, C, T, H, W) '
                         f"(format_shape='NCTHW'), got shape {shape}")
    batch, channels, frames, height, width = shape
    if channels != in_channels:
        raise ValueError(f'{owner} expects {in_channels} input channels (dim '
                         f'1 of (B, C, T, H, W)), got shape {shape}')
    if min(batch, frames) < 1:
        raise ValueError(f'{owner} got an empty batch or clip: shape {shape}')
    if frames % tubelet_size:
        raise ValueError(f'{owner}: frames T={frames} must be a multiple of '
                         f'tubelet_size={tubelet_size}, got shape {shape}')
    patch_h, patch_w = patch_size
    if height < patch_h or width < patch_w or height % patch_h \
            or width % patch_w:
        raise ValueError(f'{owner}: height and width ({height}x{width}) must '
                         f'be positive multiples of patch_size '
                         f'{patch_h}x{patch_w}, got shape {shape}')


def plain_drop_probs(module: nn.Module) -> int:
    """Turn numpy drop-path rates into Python floats, in place.

    MMAction2's TimeSformer and mmpretrain's ViT give each ``DropPath`` a rate
    from ``np.linspace``. mmcv's ``drop_path`` starts with
    ``if drop_prob == 0.``; on a numpy scalar that is a numpy bool, which
    ``torch.compile`` (dynamo) treats as a tensor and so breaks the graph
    twice per block, in inference too. A float keeps the graph whole and
    changes nothing else.

    Args:
        module (nn.Module): Searched recursively.

    Returns:
        int: How many rates were converted.
    """
    count = 0
    for sub in module.modules():
        prob = getattr(sub, 'drop_prob', None)
        # np.float64 subclasses float, so test for numpy's ``item``.
        if hasattr(prob, 'item'):
            sub.drop_prob = float(prob)
            count += 1
    return count
