"""Draw how a merging model merges the patches of a video, and where it
looks.

Example::

    python tools/visualize_merging.py CONFIG CHECKPOINT VIDEO \
        --out work_dirs/vis \
        --baseline-config BASELINE_CONFIG --baseline-ckpt BASELINE_CKPT

reads VIDEO through the config's own ``val`` pipeline (any resolution and
length) and writes into ``--out``:

- ``merge_sheet.png``: the input frames and, per merge, every patch tinted by
  the token it ends up in (:func:`~mmaction_sttm.visualization.trace_merging`);
- ``attention_sheet.png``: attention rollout heatmaps of the model (and of the
  baseline, if given) over the frames
  (:func:`~mmaction_sttm.visualization.attention_rollout`);
- ``merge.gif`` (or ``merge.mp4`` with ``--format mp4``): the clip played with
  the merge maps and heatmaps side by side.

MMAction2's own ``TimeSformer`` and ``VisionTransformer`` backbones (the
baselines' configs) are run as ``MergingTimeSformer`` /
``MergingVisionTransformer``
without a merger: the same network with the same checkpoint keys, which
exposes its tokens.

A missing file, a config that does not build, a video that cannot be read or
a checkpoint that holds less than half of the model's weights (the merger's
own not counted) is one line on stderr and exit status 2, as in the other
tools (``--traceback`` for the full traceback).
"""
import argparse
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Tuple

import numpy as np
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from torch import Tensor, nn

import mmaction_sttm  # noqa: F401  (registers the modules)
from mmaction_sttm import tooling
from mmaction_sttm.engine import safe_checkpoint_loading
from mmaction_sttm.models.catalog import FAMILIES
from mmaction_sttm.visualization import (attention_rollout,
                                         draw_attention_sheet,
                                         draw_merge_sheet, load_clip,
                                         save_animation, trace_merging)

# MMAction2 backbones -> the subclasses here that expose their tokens.
TOKEN_BACKBONES = {f.replaces: f.type for f in FAMILIES if f.replaces}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Draw merge maps and attention rollout of a merging '
        'video model on one video')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='model checkpoint file')
    parser.add_argument('video', help='video file (any size and length)')
    parser.add_argument(
        '--out',
        default='work_dirs/visualize_merging',
        help='output folder (default: %(default)s)')
    parser.add_argument(
        '--baseline-config', help='config of a model to compare with')
    parser.add_argument(
        '--baseline-ckpt', help='checkpoint of the baseline model')
    parser.add_argument(
        '--device', default='cpu', help='device, e.g. cpu or cuda:0')
    parser.add_argument(
        '--pipeline',
        choices=['val', 'test'],
        default='val',
        help='which pipeline of the config reads the video (default: val, '
        'one centre crop; test: multi-view, see --view)')
    parser.add_argument(
        '--view',
        type=int,
        default=0,
        help='view of a multi-view pipeline to show (default: 0)')
    parser.add_argument(
        '--max-frames',
        type=int,
        default=8,
        help='frames (columns) in the sheets (default: 8)')
    parser.add_argument(
        '--format',
        choices=['gif', 'mp4'],
        default='gif',
        help='animation format (default: gif)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the model config (not the baseline), '
        'e.g. model.backbone.merger.ratio=0.6')
    tooling.add_traceback_flag(parser)
    args = parser.parse_args(argv)
    if bool(args.baseline_config) != bool(args.baseline_ckpt):
        parser.error('--baseline-config and --baseline-ckpt go together')
    return args


def load_config(path: str, options: Optional[dict] = None) -> Config:
    """Read a config and apply ``--cfg-options``; a missing file is a clear
    error."""
    cfg = tooling.load_config(path)
    if options:
        with tooling.config_errors():
            cfg.merge_from_dict(options)
    return cfg


def build_model(cfg: Config, checkpoint: str, device: str) -> nn.Module:
    """Build the recognizer of ``cfg`` and load ``checkpoint`` into it.

    Args:
        cfg (Config): The model's config.
        checkpoint (str): Checkpoint file (MMEngine layout, or a plain state
            dict).
        device (str): Where to run.

    Returns:
        nn.Module: The recognizer in eval mode.
    """
    from mmaction.registry import MODELS
    from mmaction.utils import register_all_modules
    tooling.require_file(checkpoint, 'checkpoint')
    register_all_modules(init_default_scope=False)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    model_cfg = cfg.model.copy()
    backbone = model_cfg.get('backbone', {})
    if backbone.get('type') in TOKEN_BACKBONES:
        backbone = dict(backbone, type=TOKEN_BACKBONES[backbone['type']])
        model_cfg['backbone'] = backbone
    with tooling.config_errors():
        model = MODELS.build(model_cfg)
    # A checkpoint of another model would load nothing and leave a randomly
    # initialised one to draw.
    tooling.check_checkpoint(model, checkpoint)
    # As in a run of the zoo's configs (SafeCheckpointLoadingHook).
    with safe_checkpoint_loading():
        load_checkpoint(model, checkpoint, map_location='cpu')
    return model.to(device).eval()


def analyse(cfg: Config, checkpoint: str, video: str,
            args: argparse.Namespace) -> Tuple[nn.Module, Tensor, np.ndarray]:
    """Build one model and read the video through its pipeline."""
    model = build_model(cfg, checkpoint, args.device)
    clip, frames = load_clip(cfg, video, args.pipeline, args.view)
    return model, clip.to(args.device), frames


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, args.cfg_options)
        model, clip, frames = analyse(cfg, args.checkpoint, args.video, args)
        heatmaps: Dict[str, Tensor] = {}
        trace = trace_merging(model, clip)
        name = 'model' if not trace.merges else 'merging model'
        heatmaps[name] = attention_rollout(model, clip)
        if args.baseline_config:
            base_cfg = load_config(args.baseline_config)
            base, base_clip, base_frames = analyse(base_cfg,
                                                   args.baseline_ckpt,
                                                   args.video, args)
            if base_frames.shape[1:] != frames.shape[1:]:
                print(
                    f'warning: the baseline reads {base_frames.shape[1:3]} '
                    f'crops and the model {frames.shape[1:3]}; its heatmap '
                    f'is stretched over the model\'s frames',
                    file=sys.stderr)
            heatmaps['baseline'] = attention_rollout(base, base_clip)
    except ValueError as err:
        # A video the pipeline cannot read, a clip the model cannot take:
        # files the user named that cannot be used, reported as tooling.run
        # reports a missing one.
        raise tooling.ToolError(tooling.error_line(err)) from err
    if not trace.merges:
        print(
            'note: the model has no merger; the merge sheet shows the '
            'input only',
            file=sys.stderr)
    os.makedirs(args.out, exist_ok=True)
    title = (f'{osp.basename(args.video)}: {trace.num_frames} frames, '
             f'{trace.grid[1]}x{trace.grid[2]} patches of '
             f'{trace.patch_size[0]}x{trace.patch_size[1]} px')
    paths = dict(
        merge_sheet=osp.join(args.out, 'merge_sheet.png'),
        attention_sheet=osp.join(args.out, 'attention_sheet.png'),
        animation=osp.join(args.out, f'merge.{args.format}'))
    draw_merge_sheet(
        trace,
        frames,
        max_frames=args.max_frames,
        include_patches=not trace.merges,
        title=title).save(
            paths['merge_sheet'], optimize=True)
    draw_attention_sheet(
        heatmaps,
        frames,
        max_frames=args.max_frames,
        title=f'{title}; attention rollout').save(
            paths['attention_sheet'], optimize=True)
    save_animation(paths['animation'], trace, frames, heatmaps)
    for stage in trace.merges:
        print(f'after block {stage.layer} ({stage.stage}): '
              f'{stage.num_tokens} tokens, {stage.num_owning} own patches')
    for key, path in paths.items():
        print(f'{key}: {path}')
    return 0


if __name__ == '__main__':
    tooling.run(main)
