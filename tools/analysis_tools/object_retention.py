"""Does a merging model keep the marked object apart from the background?

For the synthetic motion videos, whose label is the motion of the one
object with a white core, this measures on each video, from the model's
merge maps (:func:`~mmaction_sttm.visualization.trace_merging`):

- **purity** after each merge: of the tokens that hold the object's
  patches, the largest share of a token's content that comes from object
  patches (1: a token of the object alone; near the object's share of the
  frame: blended into the background);
- **object tokens per step** after the last merge: how many distinct tokens
  the object's patches of the different time steps end up in, divided by
  the number of time steps the object is seen in (1: every step's object in
  a token of its own, so its positions over time stay apart; ``1 / T``: all
  steps merged into one token, which averages the positions that tell the
  motion).

The object's patches are the tubelets with white pixels (every channel
above ``--white``): only the marked object has a white core.

Example (the VideoMAE-style study's fine-tuned checkpoints of two seeds)::

    python tools/analysis_tools/object_retention.py \\
        configs/synthetic/videomae_study/finetune/sttm-orthogonal-r0.7_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py \\
        --checkpoints seed3=work_dirs/.../seed3/epoch_6.pth \\
        seed5=work_dirs/.../seed5/epoch_6.pth \\
        --ann-file data/study/motion/val_list_videos.txt \\
        --video-dir data/study/motion/videos --num-videos 100
"""
import argparse
import os.path as osp
import statistics
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

import mmaction_sttm  # noqa: F401  (registers the modules)
from mmaction_sttm.engine import safe_checkpoint_loading
from mmaction_sttm.registry import MODELS
from mmaction_sttm.visualization import load_clip, trace_merging


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='the merging model\'s config')
    parser.add_argument(
        '--checkpoints',
        nargs='+',
        required=True,
        metavar='NAME=PATH',
        help='checkpoints to compare, each named')
    parser.add_argument(
        '--ann-file',
        required=True,
        help='MMAction2 video list (path label per line)')
    parser.add_argument('--video-dir', required=True)
    parser.add_argument(
        '--num-videos',
        type=int,
        default=100,
        help='the first N videos of the list')
    parser.add_argument(
        '--white',
        type=int,
        default=200,
        help='a pixel is the object\'s core when every '
        'channel is above this')
    return parser.parse_args(argv)


def object_patches(frames: np.ndarray,
                   grid: Sequence[int],
                   tubelet: int,
                   white: int = 200,
                   min_pixels: int = 2) -> np.ndarray:
    """Which tubelets show the marked object's white core.

    Args:
        frames (np.ndarray): The clip's frames ``(T, H, W, 3)`` uint8.
        grid (Sequence[int]): The token grid ``(T', H', W')``.
        tubelet (int): Frames per token.
        white (int): Every channel above this is white. Defaults to 200.
        min_pixels (int): White pixels a tubelet needs. Defaults to 2.

    Returns:
        np.ndarray: ``(T' * H' * W',)`` bool, in the tokens' (frame-major)
        order.
    """
    steps, rows, cols = grid
    core = (frames.min(axis=-1) > white).astype(np.int64)
    t, h, w = core.shape
    core = core[:steps * tubelet, :rows * (h // rows), :cols * (w // cols)]
    counts = core.reshape(steps, tubelet, rows, h // rows, cols,
                          w // cols).sum(axis=(1, 3, 5))
    return (counts >= min_pixels).reshape(-1)


def retention(trace, obj: np.ndarray) -> Dict[str, float]:
    """Purity after every merge and object tokens per step after the last
    (see the module's docstring) of one traced clip."""
    obj_t = torch.from_numpy(obj)
    out: Dict[str, float] = {}
    for stage in trace.merges:
        sources = stage.sources  # (patches, tokens), rows sum to one
        mass = sources.sum(dim=0)
        share = sources[obj_t].sum(dim=0) / mass.clamp_min(1e-9)
        holders = sources[obj_t].sum(dim=0) > 0.05
        out[f'purity@{stage.layer}'] = float(share[holders].max())
    last = trace.merges[-1].assignment.reshape(trace.grid[0], -1)
    obj_steps = obj.reshape(trace.grid[0], -1)
    tokens, seen = set(), 0
    for step in range(trace.grid[0]):
        if obj_steps[step].any():
            seen += 1
            tokens |= set(last[step][torch.from_numpy(
                obj_steps[step])].tolist())
    out['tokens/step'] = len(tokens) / max(seen, 1)
    return out


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    with open(args.ann_file) as f:
        videos = [line.split()[0] for line in f if line.strip()]
    videos = videos[:args.num_videos]
    clips = [load_clip(cfg, osp.join(args.video_dir, v)) for v in videos]
    rows = []
    for item in args.checkpoints:
        name, _, path = item.partition('=')
        model = MODELS.build(cfg.model)
        with safe_checkpoint_loading():
            load_checkpoint(model, path, map_location='cpu', logger='silent')
        model.eval()
        per_video = []
        for clip, frames in clips:
            trace = trace_merging(model, clip)
            obj = object_patches(frames, trace.grid, trace.tubelet, args.white)
            if obj.any():
                per_video.append(retention(trace, obj))
        keys = list(per_video[0])
        rows.append((name, len(per_video), {
            k: statistics.mean(v[k] for v in per_video)
            for k in keys
        }))
    keys = list(rows[0][2])
    print('| checkpoint | videos | ' + ' | '.join(keys) + ' |')
    print('| --- | ---: |' + ' ---: |' * len(keys))
    for name, count, means in rows:
        print(f'| {name} | {count} | ' + ' | '.join(f'{means[k]:.3f}'
                                                    for k in keys) + ' |')
    return 0


if __name__ == '__main__':
    sys.exit(main())
