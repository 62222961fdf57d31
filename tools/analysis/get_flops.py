"""Print GFLOPs per view and parameters of a recognizer config.

Example::

    python tools/analysis/get_flops.py \
        configs/sttm/sttm_vit-base-p16_in1k-pre_8xb8-8x8x1-30e_kinetics400-rgb.py

Counts with MMEngine's ``FlopAnalyzer`` (one multiply-add is one FLOP, the
fvcore convention the paper's tables follow) at one clip of ``--shape``
(``C T H W``, default ``3 8 224 224``). Fused attention is counted too, see
:mod:`mmaction_sttm.analysis.complexity`.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='GFLOPs per view and params of a recognizer')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=4,
        default=[3, 8, 224, 224],
        metavar=('C', 'T', 'H', 'W'),
        help='input of one view (default: 3 8 224 224)')
    parser.add_argument(
        '--json', action='store_true', help='print one JSON line instead')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, as in tools/train.py')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    # Quiet MMEngine's per-parameter initialisation report.
    MMLogger.get_instance('mmengine', log_level='WARNING')
    import mmaction_sttm  # noqa: F401
    from mmaction_sttm.analysis import complexity
    from mmaction_sttm.registry import MODELS
    model = MODELS.build(cfg.model)
    model.init_weights()
    result = complexity(model, (1, *args.shape))
    gflops, params = result['flops'] / 1e9, result['params'] / 1e6
    if args.json:
        print(json.dumps(dict(config=args.config, shape=args.shape,
                              gflops=round(gflops, 2),
                              params_m=round(params, 2))))
        return
    print(f'config: {args.config}')
    print(f'input (one view): {tuple(args.shape)}')
    print(f'GFLOPs per view: {gflops:.2f}')
    print(f'params: {params:.2f} M')


if __name__ == '__main__':
    main()
