"""Pictures of merge maps and attention heatmaps over a clip's frames.

Everything returns or writes plain images: a PIL image for the sheets (save
it, or show it in a notebook) and a GIF / mp4 file for the animation.
"""
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
import torch
from torch import Tensor

from .merge_maps import MergeTrace


def token_colours(num: int) -> np.ndarray:
    """``num`` colours, ``(num, 3)`` uint8, all distinct for ``num`` up to
    3000 (more tokens than ViT-B's 1568 patches of an 8-frame clip).

    Hues step by the golden ratio, so tokens with neighbouring indices
    (neighbouring patches: merged tokens stay in source order) get very
    different hues; saturation and value cycle too, to tell apart tokens
    whose hues come close.
    """
    from matplotlib.colors import hsv_to_rgb
    index = np.arange(num)
    hue = (index * 0.6180339887) % 1.0
    sat = np.array([0.85, 0.55, 1.0])[index % 3]
    val = np.array([1.0, 0.8, 0.6])[(index // 3) % 3]
    rgb = hsv_to_rgb(np.stack([hue, sat, val], axis=1))
    return (rgb * 255).round().astype(np.uint8)


def _font(size: int = 12):
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _pick_frames(num_frames: int, max_frames: int) -> List[int]:
    """Up to ``max_frames`` evenly spaced frame indices."""
    count = max(1, min(num_frames, max_frames))
    return sorted(
        set(np.linspace(0, num_frames - 1, count).round().astype(int)))


def _upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling by an integer factor (keeps patch edges
    crisp)."""
    return image.repeat(scale, axis=0).repeat(scale, axis=1)


def _to_pixels(grid_map: np.ndarray, height: int, width: int) -> np.ndarray:
    """Patch-grid values ``(H', W')`` spread over ``height x width``
    pixels."""
    rows = np.arange(height) * grid_map.shape[0] // height
    cols = np.arange(width) * grid_map.shape[1] // width
    return grid_map[rows[:, None], cols[None, :]]


def _merge_overlay(frame: np.ndarray,
                   tokens: np.ndarray,
                   colours: np.ndarray,
                   scale: int,
                   alpha: float,
                   borders: bool = True) -> np.ndarray:
    """A frame with every patch tinted by its token's colour and, if
    ``borders``, the borders between tokens drawn dark."""
    height, width = frame.shape[:2]
    ids = _upscale(_to_pixels(tokens, height, width), scale)
    image = _upscale(frame, scale).astype(np.float32)
    image = (1 - alpha) * image + alpha * colours[ids].astype(np.float32)
    if not borders:
        return image.round().clip(0, 255).astype(np.uint8)
    edge = np.zeros(ids.shape, dtype=bool)
    edge[:, 1:] |= ids[:, 1:] != ids[:, :-1]
    edge[1:, :] |= ids[1:, :] != ids[:-1, :]
    image[edge] *= 0.25
    return image.round().clip(0, 255).astype(np.uint8)


def _stretch(heat: np.ndarray) -> np.ndarray:
    """Min-max scale a heatmap over the whole clip to [0, 1] for display
    (one scale for all frames, so frames stay comparable); a flat map
    becomes zeros rather than amplified rounding noise."""
    low, high = float(heat.min()), float(heat.max())
    if high - low < 1e-6 * max(abs(high), 1.0):
        return np.zeros_like(heat)
    return (heat - low) / (high - low)


def _heat_overlay(frame: np.ndarray, heat: np.ndarray, scale: int,
                  alpha: float, cmap: str) -> np.ndarray:
    """A frame under a colour-mapped heatmap (bilinear between patch
    centres)."""
    import cv2
    from matplotlib import colormaps
    height, width = frame.shape[:2]
    size = (width * scale, height * scale)
    heat = cv2.resize(
        heat.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    colour = colormaps[cmap](np.clip(heat, 0, 1))[..., :3] * 255
    image = _upscale(frame, scale).astype(np.float32)
    image = (1 - alpha) * image + alpha * colour
    return image.round().clip(0, 255).astype(np.uint8)


def _sheet(rows: List[List[np.ndarray]],
           labels: List[str],
           columns: List[str],
           title: Optional[str] = None):
    """Cells (equal sizes) in a grid with row labels on the left and column
    labels on top; returns a PIL image."""
    from PIL import Image, ImageDraw
    cell_h, cell_w = rows[0][0].shape[:2]
    font = _font(12)
    gap, label_w = 4, 130
    top = 18 + (18 if title else 0)
    height = top + len(rows) * (cell_h + gap)
    width = label_w + len(columns) * (cell_w + gap)
    sheet = Image.new('RGB', (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((4, 2), title, fill=(0, 0, 0), font=font)
    for c, name in enumerate(columns):
        draw.text((label_w + c * (cell_w + gap), top - 16),
                  name,
                  fill=(0, 0, 0),
                  font=font)
    for r, (cells, label) in enumerate(zip(rows, labels)):
        y = top + r * (cell_h + gap)
        draw.multiline_text((4, y + 2), label, fill=(0, 0, 0), font=font)
        for c, cell in enumerate(cells):
            sheet.paste(
                Image.fromarray(cell), (label_w + c * (cell_w + gap), y))
    return sheet


def _cell_scale(frames: np.ndarray, cell_height: int) -> int:
    return max(1, int(round(cell_height / frames.shape[1])))


def _check_frames(frames: np.ndarray, num_frames: int) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f'frames must be (T, H, W, 3), got '
                         f'{frames.shape}')
    if frames.shape[0] != num_frames:
        raise ValueError(f'{frames.shape[0]} frames for a clip of '
                         f'{num_frames}')
    return frames.astype(np.uint8)


def draw_merge_sheet(trace: MergeTrace,
                     frames: np.ndarray,
                     max_frames: int = 8,
                     include_patches: bool = False,
                     cell_height: int = 112,
                     alpha: float = 0.55,
                     borders: bool = True,
                     title: Optional[str] = None):
    """One picture of how the patches were merged.

    The first row shows the input frames; each further row is a stage
    (after each merge) with every patch tinted by the token it belongs to
    (:attr:`StageMap.assignment`) and token borders drawn dark. A token keeps
    its colour in every frame, so a spatio-temporal token that spans frames
    shows up as the same colour in several columns.

    Args:
        trace (MergeTrace): From :func:`trace_merging`.
        frames (np.ndarray): The clip's frames, uint8 RGB ``(T, H, W, 3)``
            (from :func:`load_clip`).
        max_frames (int): Columns: up to this many evenly spaced frames.
            Defaults to 8.
        include_patches (bool): Also draw the embedding stage (every patch
            its own token). Defaults to False.
        cell_height (int): Approximate height of a cell in pixels (frames
            are upscaled by an integer factor). Defaults to 112.
        alpha (float): Opacity of the token colours. Defaults to 0.55.
        borders (bool): Draw the borders between tokens dark. Defaults to
            True.
        title (str, optional): A line above the sheet.

    Returns:
        PIL.Image.Image: The sheet.
    """
    frames = _check_frames(frames, trace.num_frames)
    scale = _cell_scale(frames, cell_height)
    picked = _pick_frames(trace.num_frames, max_frames)
    stages = trace.stages if include_patches else trace.merges
    stage_ids = [trace.stages.index(s) for s in stages]
    rows = [[_upscale(frames[t], scale) for t in picked]]
    labels = ['input']
    for index, stage in zip(stage_ids, stages):
        colours = token_colours(stage.num_tokens)
        rows.append([
            _merge_overlay(frames[t],
                           trace.frame_map(index, t).numpy(), colours, scale,
                           alpha, borders) for t in picked
        ])
        labels.append(stage.label)
    return _sheet(rows, labels, [f'frame {t}' for t in picked], title)


def draw_attention_sheet(heatmaps: Dict[str, Tensor],
                         frames: np.ndarray,
                         max_frames: int = 8,
                         cell_height: int = 112,
                         alpha: float = 0.6,
                         cmap: str = 'inferno',
                         title: Optional[str] = None):
    """Attention rollout heatmaps of one or more models over the frames.

    Args:
        heatmaps (dict[str, Tensor]): Row label -> ``(T, H', W')`` heatmap
            from :func:`attention_rollout`, e.g. ``{'STTM': ..., 'baseline':
            ...}``; a heatmap with another frame count is sampled at the
            matching relative times.
        frames (np.ndarray): uint8 RGB ``(T, H, W, 3)``.
        max_frames (int): Columns. Defaults to 8.
        cell_height (int): Approximate cell height. Defaults to 112.
        alpha (float): Opacity of the heatmap. Defaults to 0.6.
        cmap (str): Matplotlib colour map. Defaults to ``'inferno'``.
        title (str, optional): A line above the sheet.

    Returns:
        PIL.Image.Image: The sheet, one row per model under the input row.
    """
    frames = np.asarray(frames).astype(np.uint8)
    num_frames = frames.shape[0]
    scale = _cell_scale(frames, cell_height)
    picked = _pick_frames(num_frames, max_frames)
    rows = [[_upscale(frames[t], scale) for t in picked]]
    labels = ['input']
    for name, heat in heatmaps.items():
        heat = _stretch(torch.as_tensor(heat).float().cpu().numpy())
        rows.append([
            _heat_overlay(frames[t], heat[t * heat.shape[0] // num_frames],
                          scale, alpha, cmap) for t in picked
        ])
        labels.append(name)
    return _sheet(rows, labels, [f'frame {t}' for t in picked], title)


def save_animation(path: str,
                   trace: MergeTrace,
                   frames: np.ndarray,
                   heatmaps: Optional[Dict[str, Tensor]] = None,
                   fps: float = 4.,
                   cell_height: int = 112,
                   alpha: float = 0.55) -> str:
    """Play the clip with its merge maps (and heatmaps) side by side.

    Every animation frame shows one input frame, then that frame under each
    merge stage's token colours, then under each heatmap.

    Args:
        path (str): Output file: ``.gif`` (Pillow) or ``.mp4`` (OpenCV,
            MPEG-4 part 2).
        trace (MergeTrace): From :func:`trace_merging`.
        frames (np.ndarray): uint8 RGB ``(T, H, W, 3)``.
        heatmaps (dict[str, Tensor], optional): Extra panels, as in
            :func:`draw_attention_sheet`.
        fps (float): Frames per second. Defaults to 4.
        cell_height (int): Approximate panel height. Defaults to 112.
        alpha (float): Opacity of the overlays. Defaults to 0.55.

    Returns:
        str: ``path``.
    """
    from PIL import Image, ImageDraw
    ext = osp.splitext(path)[1].lower()
    if ext not in ('.gif', '.mp4'):
        raise ValueError(f'animation path must end in .gif or .mp4, got '
                         f'{path!r}')
    frames = _check_frames(frames, trace.num_frames)
    scale = _cell_scale(frames, cell_height)
    heatmaps = {
        k: _stretch(torch.as_tensor(v).float().cpu().numpy())
        for k, v in (heatmaps or {}).items()
    }
    names = ['input'] + [s.label.split('\n')[0] for s in trace.merges]
    names += list(heatmaps)
    colours = [token_colours(s.num_tokens) for s in trace.merges]
    font = _font(11)
    images = []
    for t in range(trace.num_frames):
        panels = [_upscale(frames[t], scale)]
        for index, palette in enumerate(colours, start=1):
            panels.append(
                _merge_overlay(frames[t],
                               trace.frame_map(index, t).numpy(), palette,
                               scale, alpha))
        for heat in heatmaps.values():
            panels.append(
                _heat_overlay(frames[t],
                              heat[t * heat.shape[0] // trace.num_frames],
                              scale, 0.6, 'inferno'))
        cell_h, cell_w = panels[0].shape[:2]
        canvas = Image.new('RGB', (len(panels) * (cell_w + 4), cell_h + 16),
                           (255, 255, 255))
        draw = ImageDraw.Draw(canvas)
        for i, (panel, name) in enumerate(zip(panels, names)):
            canvas.paste(Image.fromarray(panel), (i * (cell_w + 4), 16))
            draw.text((i * (cell_w + 4) + 2, 2),
                      name,
                      fill=(0, 0, 0),
                      font=font)
        images.append(canvas)
    if ext == '.gif':
        images[0].save(
            path,
            save_all=True,
            append_images=images[1:],
            duration=int(round(1000 / fps)),
            loop=0)
        return path
    import cv2
    width, height = images[0].size
    size = (width + width % 2, height + height % 2)  # codecs want even sizes
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f'OpenCV cannot write {path!r}')
    try:
        for image in images:
            canvas = Image.new('RGB', size, (255, 255, 255))
            canvas.paste(image, (0, 0))
            writer.write(np.asarray(canvas)[..., ::-1].copy())
    finally:
        writer.release()
    return path
