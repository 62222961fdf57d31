# Copyright (c) OpenMMLab. All rights reserved. Adapted for mmaction-sttm.
"""Test (and evaluate) a recognizer: MMAction2's ``tools/test.py`` plus
distributed runs on CPU with gloo (:mod:`mmaction_sttm.compat`). The
checkpoint loads through the config's hooks (safely with the zoo's runtime
config). The final metrics are printed and written to
``<work_dir>/test_metrics.json``. A missing config, checkpoint or data path,
a config that does not build, or a checkpoint that holds less than half of
the model's weights (a merger's own weights not counted, so a merger added
to a trained model loads its checkpoint) is one line on stderr and exit
status 2 (:mod:`mmaction_sttm.tooling`; ``--traceback`` for the full
traceback).
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List, Optional

from mmengine.config import Config
from mmengine.dist import is_main_process

import mmaction_sttm  # noqa: F401  (registers the modules)
from mmaction_sttm import tooling
from mmaction_sttm.compat import finish_distributed, setup_distributed
from mmaction_sttm.models.catalog import check_merging_backbone

METRICS_FILE = 'test_metrics.json'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (the options of MMAction2 1.1.0)."""
    parser = argparse.ArgumentParser(
        description='MMAction2 test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--dump',
        type=str,
        help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument(
        '--show-dir',
        help='directory where the visualization images will be saved.')
    parser.add_argument(
        '--show',
        action='store_true',
        help='whether to display the prediction results in a window.')
    parser.add_argument(
        '--interval',
        type=int,
        default=1,
        help='visualize per interval samples.')
    parser.add_argument(
        '--wait-time',
        type=float,
        default=2,
        help='display time of every window. (second)')
    parser.add_argument(
        '--strict-scoring',
        action='store_true',
        help='fail, listing the files, if any test video cannot be scored '
        '(sets test_dataloader.dataset.strict_scoring=True of a '
        'RobustVideoDataset) instead of scoring the others')
    tooling.add_runner_args(parser)
    return tooling.parse_runner_args(parser, argv)


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Merge CLI arguments into the config.

    Args:
        cfg (Config): The loaded config.
        args (argparse.Namespace): Parsed command line.

    Returns:
        Config: ``cfg``, updated in place.
    """
    if args.show or args.show_dir is not None:
        if 'visualization' not in cfg.default_hooks:
            raise tooling.ToolError(
                '--show / --show-dir need `default_hooks.visualization = '
                'dict(type="VisualizationHook")` in the config')
        cfg.default_hooks.visualization.enable = True
        cfg.default_hooks.visualization.show = args.show
        cfg.default_hooks.visualization.wait_time = args.wait_time
        cfg.default_hooks.visualization.out_dir = args.show_dir
        cfg.default_hooks.visualization.interval = args.interval

    if args.dump is not None:
        if not args.dump.endswith(('.pkl', '.pickle')):
            raise tooling.ToolError(
                f'--dump must name a .pkl or .pickle file, got {args.dump}')
        dump_metric = dict(type='DumpResults', out_file_path=args.dump)
        if isinstance(cfg.test_evaluator, (list, tuple)):
            cfg.test_evaluator = [*cfg.test_evaluator, dump_metric]
        else:
            cfg.test_evaluator = [cfg.test_evaluator, dump_metric]

    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
        # --cfg-options may add a merger to a backbone that cannot merge.
        check_merging_backbone(cfg.model.get('backbone'))
    if getattr(args, 'strict_scoring', False):
        set_strict_scoring(cfg)

    # work_dir is determined in this priority: CLI > segment in file > filename
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    tooling.require_file(args.checkpoint, 'checkpoint')
    cfg.load_from = args.checkpoint
    return cfg


def set_strict_scoring(cfg: Config) -> None:
    """Make every unscored test video an error (``--strict-scoring``).

    Args:
        cfg (Config): The config; its test dataset (or the dataset inside a
            dataset wrapper) must be a ``RobustVideoDataset``.
    """
    dataset = cfg.test_dataloader.dataset
    while dataset.get('type') != 'RobustVideoDataset' and isinstance(
            dataset.get('dataset'), dict):
        dataset = dataset.dataset
    if dataset.get('type') != 'RobustVideoDataset':
        raise ValueError('--strict-scoring needs test_dataloader.dataset of '
                         f"type 'RobustVideoDataset', got "
                         f"{dataset.get('type')!r}")
    dataset.strict_scoring = True


def report_metrics(metrics: Dict[str, float], work_dir: str) -> str:
    """Print the final metrics and write them to ``work_dir`` as JSON.

    Args:
        metrics (dict[str, float]): What ``Runner.test`` returned.
        work_dir (str): Where ``test_metrics.json`` goes.

    Returns:
        str: Path of the JSON file.
    """
    # numpy scalars are not JSON serialisable.
    metrics = {k: float(v) for k, v in metrics.items()}
    width = max(map(len, metrics), default=0)
    lines = [f'  {k:<{width}}  {v:.4f}' for k, v in metrics.items()]
    print('Test metrics:', *lines, sep='\n', flush=True)
    path = osp.join(work_dir, METRICS_FILE)
    os.makedirs(work_dir, exist_ok=True)
    with open(path, 'w') as f:
        json.dump(metrics, f, indent=2)
    print(f'Test metrics written to {path}', flush=True)
    return path


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    cfg = tooling.load_config(args.config)
    with tooling.config_errors():
        cfg = merge_args(cfg, args)
    # Runner.test loads the checkpoint without initialising the model, so
    # pretrained files are not read and not checked.
    tooling.check_data_paths(cfg, ['test'])
    # The model and the checkpoint are checked before the Runner prints its
    # environment and makes the work dir.
    tooling.check_checkpoint(tooling.build_model(cfg), args.checkpoint)
    if args.launcher == 'none' and cfg.get('runner_type') is not None:
        # One process has nothing to shard: a sharded-training config (its
        # checkpoints are full state dicts) is tested as any other.
        cfg.pop('runner_type')
        cfg.pop('strategy', None)
    # On CPU: gloo process group and DDP without device ids (no-op on GPU).
    setup_distributed(cfg, args.launcher)
    runner = tooling.build_runner(cfg)
    with tooling.runner_checkpoint_loading(cfg):
        metrics = runner.test()
    if is_main_process():
        report_metrics(metrics, cfg.work_dir)
    finish_distributed()


if __name__ == '__main__':
    tooling.run(main)
