"""Print GFLOPs per view and parameters of a recognizer config.

Example::

    python tools/analysis_tools/get_flops.py \
        configs/sttm/sttm_vit-small-p16_in1k-pre_8xb8-13x8x1-30e_kinetics400-rgb.py

Counts with MMEngine's ``FlopAnalyzer`` (one multiply-add is one FLOP, the
fvcore convention the paper's tables follow) on one view: one clip of one
crop. Fused attention is counted too, see
:mod:`mmaction_sttm.analysis.complexity`.

The view is read from the config's test pipeline (the clip length of its
frame sampler, the size of its last crop) unless ``--shape`` gives it:

- ``--shape N C T H W``: MMAction2's form for 3D recognizers; the count is
  for ``N`` clips and is also reported per view;
- ``--shape H W`` or ``--shape S``: the crop only, frames from the config
  (as in MMAction2);
- ``--shape T H W``: one view.

Four numbers are refused: MMAction2 reads them as ``N C H W`` (a 2D
recognizer's input), which no video model here takes.

For a config with a merger, the model with the merger removed
(``model.backbone.merger=None``) is counted too, and the ratio printed.

A content-adaptive reducer (``model.backbone.reducer``, e.g. RLT) keeps a
number of tokens that depends on the video, so one random clip says little.
``--videos ANN_FILE`` counts one view of each of the first
``--num-videos`` videos of an annotation list, read through the config's
test pipeline and data preprocessor, and prints the mean, the range and the
tokens kept; the model without its reducer and merger is the reference.

The model is built without reading any weights file (``pretrained`` and
``init_cfg=dict(type='Pretrained')`` are switched off), so the counts do not
need checkpoints. A missing config, a config that does not build or a shape
the model cannot take is one line and exit status 2 (``--traceback`` for the
full traceback).
"""
import argparse
import copy
import json
import logging
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

from mmaction_sttm import tooling
from mmaction_sttm.analysis.view import pipeline_view  # noqa: F401
from mmaction_sttm.analysis.view import video_views
from mmaction_sttm.models.catalog import check_merging_backbone


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='GFLOPs per view and params of a recognizer')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=None,
        help='input: N C T H W (MMAction2\'s 3D form), T H W (one view), '
        'H W or S (crop only, frames from the config); default: from the '
        'test pipeline')
    parser.add_argument(
        '--table',
        type=int,
        nargs='?',
        const=3,
        default=None,
        metavar='DEPTH',
        help='also print the per-module table of params and FLOPs, DEPTH '
        'module levels deep (default 3)')
    parser.add_argument(
        '--videos',
        metavar='ANN_FILE',
        help='count one view of each video of this annotation list (for '
        'content-adaptive reducers): mean and range of GFLOPs')
    parser.add_argument(
        '--video-prefix',
        metavar='DIR',
        help='folder of the --videos files (default: the test dataset\'s '
        'data_prefix)')
    parser.add_argument(
        '--num-videos',
        type=int,
        default=50,
        help='how many videos of --videos to count (default 50)')
    parser.add_argument(
        '--json', action='store_true', help='print one JSON line instead')
    parser.add_argument(
        '--per-video',
        action='store_true',
        help='with --videos: also one line per video (GFLOPs, tokens kept)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, as in tools/train.py')
    tooling.add_traceback_flag(parser)
    return parser.parse_args(argv)


def input_shape(shape: Optional[List[int]],
                view: Dict[str, Any]) -> Tuple[Tuple[int, ...], str]:
    """The ``(N, C, T, H, W)`` to count and where it came from.

    Args:
        shape (list[int], optional): ``--shape``.
        view (dict): What :func:`pipeline_view` read.

    Returns:
        tuple: The shape and a few words on its source.
    """

    def need(key: str) -> Any:
        if view[key] is None:
            raise tooling.ToolError(
                f'the test pipeline gives no {key.replace("_", " ")}; pass '
                'it with --shape T H W')
        return view[key]

    if shape is None:
        (h, w), t = need('crop'), need('clip_len')
        return (1, 3, t, h, w), 'from the test pipeline'
    if len(shape) == 5:
        return tuple(shape), '--shape N C T H W'
    if len(shape) == 4:
        raise tooling.ToolError(
            f'--shape {" ".join(map(str, shape))}: 4 numbers are N C H W in '
            "MMAction2 (a 2D recognizer's input) and no video model here "
            'takes that; give N C T H W (e.g. 1 3 8 224 224), T H W or H W')
    if len(shape) == 3:
        return (1, 3, *shape), '--shape T H W'
    if len(shape) in (1, 2):
        h, w = shape * 2 if len(shape) == 1 else shape
        return (1, 3, need('clip_len'), h,
                w), ('--shape for the crop, frames from the test pipeline')
    raise tooling.ToolError(f'--shape takes 1, 2, 3 or 5 numbers (N C T H W), '
                            f'got {len(shape)}: {shape}')


def _check_tubelet(cfg: Config, frames: int) -> None:
    tubelet = (cfg.get('model') or {}).get('backbone', {}).get('tubelet_size')
    if tubelet and frames % tubelet:
        raise tooling.ToolError(f'{frames} frames are not a whole number of '
                                f'tubelets (model.backbone.tubelet_size='
                                f'{tubelet})')


def count(model_cfg: Any,
          shape: Tuple[int, ...],
          table_depth: Optional[int] = None) -> Dict[str, Any]:
    """Build a recognizer from its config and count it on one input.

    Args:
        model_cfg (dict): ``cfg.model``; weights files are not read.
        shape (tuple[int]): ``(N, C, T, H, W)``.
        table_depth (int, optional): Depth of the per-module table.

    Returns:
        dict: What :func:`mmaction_sttm.analysis.complexity` returns.
    """
    import mmaction_sttm  # noqa: F401
    from mmaction_sttm.analysis import complexity
    from mmaction_sttm.registry import MODELS
    model_cfg = copy.deepcopy(model_cfg)
    tooling.disable_pretrained(model_cfg)
    with tooling.config_errors():
        model = MODELS.build(model_cfg)
    model.init_weights()
    try:
        return complexity(model, shape, table_depth=table_depth)
    except (RuntimeError, ValueError) as error:
        message = str(error).strip().splitlines() or ['']
        raise tooling.ToolError(
            f'the model cannot run on input {"x".join(map(str, shape))} '
            f'(N C T H W): {message[-1]}') from error


def count_videos(model_cfg: Any, batches: List[Any]) -> Dict[str, Any]:
    """Count one view of each video
    (:func:`~mmaction_sttm.analysis.complexity_of_views`).

    Args:
        model_cfg (dict): ``cfg.model``; weights files are not read.
        batches (list): Collated samples, one video each
            (:func:`~mmaction_sttm.analysis.view.video_views`).

    Returns:
        dict: ``gflops`` per video, ``tokens`` kept by the reducer per video
        (None without one) and ``shape`` of a view.
    """
    import mmaction_sttm  # noqa: F401
    from mmaction_sttm.analysis import complexity_of_views
    from mmaction_sttm.registry import MODELS
    model_cfg = copy.deepcopy(model_cfg)
    tooling.disable_pretrained(model_cfg)
    with tooling.config_errors():
        model = MODELS.build(model_cfg)
    model.init_weights()
    return complexity_of_views(model, batches)


def main_videos(args: argparse.Namespace, cfg: Config) -> None:
    """``--videos``: mean and range of GFLOPs over real videos."""
    import statistics
    batches = video_views(cfg, args.videos, args.video_prefix, args.num_videos)
    result = count_videos(cfg.model, batches)
    plain = copy.deepcopy(cfg.model)
    plain.backbone.reducer = None
    plain.backbone.merger = None
    reference = count(plain, result['shape'])['flops'] / 1e9
    flops = result['gflops']
    record = dict(
        config=args.config,
        videos=args.videos,
        num_videos=len(flops),
        shape=list(result['shape']),
        gflops_mean=statistics.fmean(flops),
        gflops_min=min(flops),
        gflops_max=max(flops),
        unreduced_gflops=reference)
    if result['tokens']:
        tokens = result['tokens']
        record.update(
            tokens_mean=statistics.fmean(tokens),
            tokens_min=min(tokens),
            tokens_max=max(tokens))
    names = [
        osp.relpath(b['filename'], args.video_prefix)
        if args.video_prefix else b['filename'] for b in batches
    ]
    record['per_video'] = [
        dict(video=name, gflops=g, tokens=t)
        for name, g, t in zip(names, flops, result['tokens'] or [None] *
                              len(flops))
    ]
    if args.json:
        print(json.dumps(record))
        return
    print(f'config: {args.config}')
    print(f'videos counted: {len(flops)} of {args.videos}, one view each '
          f'({"x".join(map(str, result["shape"]))}, N C T H W)')
    mean = record['gflops_mean']
    print(f'GFLOPs per view: mean {mean:.4g}, range {min(flops):.4g} - '
          f'{max(flops):.4g}')
    print(f'GFLOPs per view without reducer and merger: {reference:.4g}; '
          f'mean ratio {mean / reference:.3f}')
    if result['tokens']:
        print(f'tokens kept by the reducer: mean {record["tokens_mean"]:.1f}'
              f', range {record["tokens_min"]} - {record["tokens_max"]}')
    if args.per_video:
        for row in record['per_video']:
            kept = '' if row['tokens'] is None else \
                f', {row["tokens"]} tokens kept'
            print(f'  {row["video"]}: {row["gflops"]:.4g} GFLOPs '
                  f'({row["gflops"] / reference:.3f}){kept}')


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    cfg = tooling.load_config(args.config)
    if args.cfg_options:
        with tooling.config_errors():
            cfg.merge_from_dict(args.cfg_options)
            check_merging_backbone(cfg.model.get('backbone'))
    if args.videos:
        init_default_scope(cfg.get('default_scope', 'mmaction'))
        MMLogger.get_current_instance().setLevel(logging.WARNING)
        main_videos(args, cfg)
        return
    view = pipeline_view(cfg)
    shape, source = input_shape(args.shape, view)
    _check_tubelet(cfg, shape[2])
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    # Quiet MMEngine's per-parameter initialisation report (INFO records
    # of the current logger).
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    result = count(cfg.model, shape, args.table)
    clips = shape[0]
    gflops = result['flops'] / 1e9 / clips
    params = result['params'] / 1e6
    unmerged = None
    backbone = (cfg.model or {}).get('backbone') or {}
    if backbone.get('merger'):
        # The same model with its merger removed (every backbone here
        # takes merger=None: the unmerged network, same weights).
        plain = copy.deepcopy(cfg.model)
        plain.backbone.merger = None
        unmerged = count(plain, shape)['flops'] / 1e9 / clips
    if args.json:
        # Full precision: readers round for display (tiny models have
        # GFLOPs below 0.01).
        record = dict(
            config=args.config,
            shape=list(shape),
            shape_source=source,
            gflops=gflops,
            params_m=params,
            views=view['views'])
        if unmerged is not None:
            record.update(
                unmerged_gflops=unmerged, flop_ratio=gflops / unmerged)
        print(json.dumps(record))
        return
    if 'table' in result:
        print(result['table'])
    print(f'config: {args.config}')
    print(f'input counted: {"x".join(map(str, shape))} (N C T H W, '
          f'{source})')
    if clips > 1:
        print(f'GFLOPs for the {clips} clips: {gflops * clips:.4g}')
    print(f'GFLOPs per view: {gflops:.4g}')
    if unmerged is not None:
        print(f'GFLOPs per view without the merger: {unmerged:.4g} '
              f'(model.backbone.merger=None); ratio {gflops / unmerged:.3f}'
              f' ({unmerged / gflops:.2f}x fewer FLOPs)')
    if view['views'] > 1:
        print(f'GFLOPs per video ({view["views"]} views in the test '
              f'pipeline): {gflops * view["views"]:.4g}')
    print(f'params: {params:.4g} M')
    if backbone.get('reducer'):
        print(f'note: model.backbone.reducer ({backbone.reducer.type}) '
              'keeps what a video does not repeat; these GFLOPs are for a '
              'random clip, in which nothing is static (nothing is '
              'dropped): for the mean over real videos add --videos '
              'LIST --video-prefix FOLDER')


if __name__ == '__main__':
    tooling.run(main)
