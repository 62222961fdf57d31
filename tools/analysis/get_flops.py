"""Print GFLOPs per view and parameters of a recognizer config.

Example::

    python tools/analysis/get_flops.py \
        configs/sttm/sttm_vit-small-p16_in1k-pre_8xb8-13x8x1-30e_kinetics400-rgb.py

Counts with MMEngine's ``FlopAnalyzer`` (one multiply-add is one FLOP, the
fvcore convention the paper's tables follow) on one view: one clip of one
crop. Fused attention is counted too, see
:mod:`mmaction_sttm.analysis.complexity`.

The view is read from the config's test pipeline (the clip length of its
frame sampler, the size of its last crop) unless ``--shape`` gives it:

- ``--shape T H W`` or ``--shape C T H W``: one view;
- ``--shape N C T H W``: MMAction2's form; the count is for ``N`` clips and
  is also reported per view;
- ``--shape H W`` or ``--shape S``: the crop only, frames from the config.

The model is built without reading any weights file (``pretrained`` and
``init_cfg=dict(type='Pretrained')`` are switched off), so the counts do not
need checkpoints. A missing config is one line and exit status 2.
"""
import argparse
import json
import logging
from typing import Any, Dict, List, Optional, Tuple

from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

from mmaction_sttm import cli

# MMAction2's frame samplers; each has `clip_len`.
SAMPLERS = ('SampleFrames', 'UniformSample', 'UniformSampleFrames',
            'DenseSampleFrames', 'SampleAVAFrames')
# Steps whose output is several views of one clip, and how many.
MULTI_CROPS = {'ThreeCrop': 3, 'TenCrop': 10}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='GFLOPs per view and params of a recognizer')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=None,
        help='input: N C T H W (MMAction2), C T H W or T H W (one view), '
        'H W or S (crop only); default: from the test pipeline')
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
        '--json', action='store_true', help='print one JSON line instead')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, as in tools/train.py')
    return parser.parse_args(argv)


def _test_pipeline(cfg: Config) -> Optional[List[dict]]:
    for loader in ('test_dataloader', 'val_dataloader'):
        dataset = (cfg.get(loader) or {}).get('dataset') or {}
        # Through wrappers such as RepeatDataset.
        while isinstance(dataset.get('dataset'), dict):
            dataset = dataset['dataset']
        if dataset.get('pipeline'):
            return list(dataset['pipeline'])
    return cfg.get('test_pipeline')


def pipeline_view(cfg: Config) -> Dict[str, Any]:
    """One view of the config's test pipeline.

    Args:
        cfg (Config): The config.

    Returns:
        dict: ``clip_len``, ``crop`` (``(H, W)``) and ``views`` (clips x
        crops per video), each None where the pipeline does not say.
    """
    steps = _test_pipeline(cfg) or []
    clip_len = crop = None
    clips, crops = 1, 1
    for step in steps:
        kind = str(step.get('type', '')).split('.')[-1]
        if kind in SAMPLERS and 'clip_len' in step:
            clip_len = int(step['clip_len'])
            clips = int(step.get('num_clips', 1))
        size = step.get('crop_size')
        if kind == 'Resize' and not step.get('keep_ratio', True):
            size = step.get('scale')
        if size is not None:
            # MMAction2 sizes are (w, h).
            w, h = (size, size) if isinstance(size, int) else size
            if min(w, h) > 0:
                crop = (int(h), int(w))
        if kind in MULTI_CROPS:
            crops = MULTI_CROPS[kind]
    return dict(clip_len=clip_len, crop=crop, views=clips * crops)


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
            raise cli.ToolError(
                f'the test pipeline gives no {key.replace("_", " ")}; pass '
                'it with --shape C T H W')
        return view[key]

    if shape is None:
        (h, w), t = need('crop'), need('clip_len')
        return (1, 3, t, h, w), 'from the test pipeline'
    if len(shape) == 5:
        return tuple(shape), '--shape N C T H W'
    if len(shape) == 4:
        return (1, *shape), '--shape C T H W'
    if len(shape) == 3:
        return (1, 3, *shape), '--shape T H W'
    if len(shape) in (1, 2):
        h, w = shape * 2 if len(shape) == 1 else shape
        return (1, 3, need('clip_len'), h, w), (
            '--shape for the crop, frames from the test pipeline')
    raise cli.ToolError(f'--shape takes 1 to 5 numbers (N C T H W), got '
                        f'{len(shape)}: {shape}')


def _check_tubelet(cfg: Config, frames: int) -> None:
    tubelet = (cfg.get('model') or {}).get('backbone', {}).get(
        'tubelet_size')
    if tubelet and frames % tubelet:
        raise cli.ToolError(f'{frames} frames are not a whole number of '
                            f'tubelets (model.backbone.tubelet_size='
                            f'{tubelet})')


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    cfg = cli.load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    view = pipeline_view(cfg)
    shape, source = input_shape(args.shape, view)
    _check_tubelet(cfg, shape[2])
    # FLOPs do not depend on the weights: never read a weights file.
    cli.disable_pretrained(cfg.model)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    # Quiet MMEngine's per-parameter initialisation report (INFO records
    # of the current logger).
    MMLogger.get_current_instance().setLevel(logging.WARNING)
    import mmaction_sttm  # noqa: F401
    from mmaction_sttm.analysis import complexity
    from mmaction_sttm.registry import MODELS
    model = MODELS.build(cfg.model)
    model.init_weights()
    result = complexity(model, shape, table_depth=args.table)
    clips = shape[0]
    gflops = result['flops'] / 1e9 / clips
    params = result['params'] / 1e6
    if args.json:
        # Full precision: readers round for display (tiny models have
        # GFLOPs below 0.01).
        print(json.dumps(dict(config=args.config, shape=list(shape),
                              shape_source=source, gflops=gflops,
                              params_m=params, views=view['views'])))
        return
    if 'table' in result:
        print(result['table'])
    print(f'config: {args.config}')
    print(f'input counted: {"x".join(map(str, shape))} (N C T H W, '
          f'{source})')
    if clips > 1:
        print(f'GFLOPs for the {clips} clips: {gflops * clips:.4g}')
    print(f'GFLOPs per view: {gflops:.4g}')
    if view['views'] > 1:
        print(f'GFLOPs per video ({view["views"]} views in the test '
              f'pipeline): {gflops * view["views"]:.4g}')
    print(f'params: {params:.4g} M')


if __name__ == '__main__':
    cli.run(main)
