# Copyright (c) OpenMMLab. All rights reserved. Adapted for mmaction-sttm.
"""Train a recognizer: MMAction2's ``tools/train.py`` plus distributed runs
on CPU with gloo (:mod:`mmaction_sttm.compat`). Safe checkpoint loading and
crash-safe checkpoint writes come from the hooks the config names (the zoo's
``configs/_base_/default_runtime.py`` does). A missing config, checkpoint,
data or pretrained-weights path, or a config that does not build, is one
line on stderr and exit status 2 (:mod:`mmaction_sttm.tooling`; ``--traceback``
for the full traceback)."""
import argparse
import os.path as osp
from typing import List, Optional

from mmengine.config import Config

import mmaction_sttm  # noqa: F401  (registers the modules)
from mmaction_sttm import tooling
from mmaction_sttm.compat import finish_distributed, setup_distributed
from mmaction_sttm.models.catalog import check_merging_backbone


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (the options of MMAction2 1.1.0)."""
    parser = argparse.ArgumentParser(description='Train a action recognizer')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If specify checkpoint path, resume from it, while if not '
        'specify, try to auto resume from the latest checkpoint '
        'in the work directory.')
    parser.add_argument(
        '--amp',
        action='store_true',
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='whether not to evaluate the checkpoint during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='whether to auto scale the learning rate according to the '
        'actual batch size and the original batch size.')
    parser.add_argument('--seed', type=int, default=None, help='random seed')
    parser.add_argument(
        '--diff-rank-seed',
        action='store_true',
        help='whether or not set different seeds for different ranks')
    parser.add_argument(
        '--deterministic',
        action='store_true',
        help='whether to set deterministic options for CUDNN backend.')
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
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None

    cfg.launcher = args.launcher

    # work_dir is determined in this priority: CLI > segment in file > filename
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise tooling.ToolError(
                '--amp does not support the custom optimizer '
                f'wrapper type {optim_wrapper!r}')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')

    if args.resume == 'auto':
        # mmengine looks for `last_checkpoint` in the work dir and starts
        # from scratch when there is none.
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        tooling.require_file(args.resume, '--resume checkpoint')
        cfg.resume = True
        cfg.load_from = args.resume

    if args.auto_scale_lr:
        if cfg.get('auto_scale_lr') is None:
            raise tooling.ToolError(
                '--auto-scale-lr needs `auto_scale_lr = dict(enable=False, '
                'base_batch_size=...)` in the config; '
                f'{args.config} has none')
        cfg.auto_scale_lr.enable = True

    if cfg.get('randomness', None) is None:
        cfg.randomness = dict(
            seed=args.seed,
            diff_rank_seed=args.diff_rank_seed,
            deterministic=args.deterministic)

    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
        # --cfg-options may add a merger to a backbone that cannot merge.
        check_merging_backbone(cfg.model.get('backbone'))
    return cfg


def check_paths(cfg: Config) -> None:
    """Check every file the run will read before anything is built.

    Args:
        cfg (Config): The merged config.
    """
    load_from = cfg.get('load_from')
    if isinstance(load_from, str) and load_from:
        tooling.require_file(load_from, 'load_from checkpoint')
    # Runner.train initialises the model (reading pretrained files) before
    # it loads `load_from`, so those files are needed even when fine-tuning.
    tooling.check_pretrained(cfg)
    tooling.check_data_paths(cfg, ['train', 'val'])


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    cfg = tooling.load_config(args.config)
    with tooling.config_errors():
        cfg = merge_args(cfg, args)
    check_paths(cfg)
    # A wrong model field fails here, before the Runner prints its
    # environment and makes the work dir.
    tooling.build_model(cfg)
    # On CPU: gloo process group and DDP without device ids (no-op on GPU).
    setup_distributed(cfg, args.launcher)
    runner = tooling.build_runner(cfg)
    with tooling.runner_checkpoint_loading(cfg):
        runner.train()
    finish_distributed()


if __name__ == '__main__':
    tooling.run(main)
