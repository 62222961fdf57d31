"""The two paths of docs/off_the_shelf.md, through the tools as a user runs
them: a trained MMAction2 ViT (no merger), then

1. off the shelf: ``tools/test.py`` with a 3-line merger config on top of the
   trained model's config and its checkpoint;
2. fine-tuning: ``tools/train.py`` with the same config and
   ``load_from=<checkpoint>``.
"""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from stack import load_runner_checkpoint

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASELINE = osp.join(REPO_ROOT, 'configs', 'synthetic',
                    'vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py')
# A 3-block, 32-wide ViT on the 2-class tiny dataset: seconds per epoch.
TINY = [
    'model.backbone.embed_dims=32', 'model.backbone.depth=3',
    'model.backbone.num_heads=2', 'model.cls_head.in_channels=32',
    'model.cls_head.num_classes=2', 'train_dataloader.batch_size=2',
    'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
    'test_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.persistent_workers=False',
    'test_dataloader.persistent_workers=False', 'train_cfg.max_epochs=1'
]
# The three lines of docs/off_the_shelf.md, on the tiny model's depth (a
# merge after blocks 1 and 2 of 3 instead of 6 and 9 of 12).
MERGER_CONFIG = """\
_base_ = '{base}'
custom_imports = dict(imports=['mmaction_sttm'], allow_failed_imports=False)
model = dict(backbone=dict(type='MergingVisionTransformer', merger=dict(type='STTM', layers=(1, 2), stages=('spatial', 'spatiotemporal'), ratio=0.5, fuse_init='identity')))
"""  # noqa: E501


def _python_tool(args, cwd):
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO_ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env['OMP_NUM_THREADS'] = '1'
    proc = subprocess.run([sys.executable, *args],
                          cwd=cwd,
                          env=env,
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=600)
    if proc.returncode != 0:
        pytest.fail(f'{" ".join(args)} exited with {proc.returncode}:\n'
                    f'{proc.stdout[-6000:]}')
    return proc


@pytest.fixture(scope='module')
def trained(tmp_path_factory, tiny_dataset, data_cfg_options):
    """``(work_dir, checkpoint)`` of the tiny ViT trained for one epoch
    without a merger: the user's existing model."""
    work_dir = str(tmp_path_factory.mktemp('baseline'))
    _python_tool([
        osp.join(REPO_ROOT, 'tools',
                 'train.py'), BASELINE, '--work-dir', work_dir, '--seed', '0',
        '--cfg-options', *TINY, *data_cfg_options(tiny_dataset)
    ],
                 cwd=work_dir)
    return work_dir, osp.join(work_dir, 'epoch_1.pth')


@pytest.fixture(scope='module')
def merger_config(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp('cfg') / 'sttm_on_my_vit.py'
    path.write_text(MERGER_CONFIG.format(base=BASELINE))
    assert len(path.read_text().splitlines()) == 3
    return str(path)


def _build(config: str):
    from mmaction_sttm.registry import MODELS
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(
        Config(
            dict(
                model=dict(
                    backbone=dict(embed_dims=32, depth=3, num_heads=2),
                    cls_head=dict(in_channels=32, num_classes=2)))))
    from mmengine.registry import init_default_scope
    init_default_scope('mmaction')
    return MODELS.build(cfg.model)


def test_checkpoint_fits_all_but_the_merger(trained, merger_config):
    """The trained model's weights fill every parameter of the merging
    model except the merger's own, which the checkpoint does not have: the
    merger says so itself (one line, its init kept) instead of listing its
    keys as missing."""
    state = load_runner_checkpoint(trained[1])['state_dict']
    model = _build(merger_config)
    merger_keys = [
        k for k in model.state_dict()
        if k.startswith('backbone.merge_schedule.')
    ]
    assert merger_keys and not any(k in state for k in merger_keys)
    before = {
        k: v.clone()
        for k, v in model.state_dict().items() if k in merger_keys
    }
    result = model.load_state_dict(state, strict=False)
    assert result.unexpected_keys == []
    assert result.missing_keys == []
    for key, value in model.state_dict().items():
        if key in merger_keys:
            assert torch.equal(value, before[key]), key
        else:
            assert torch.equal(value, state[key]), key


def test_off_the_shelf_through_test_py(trained, merger_config, tiny_dataset,
                                       data_cfg_options):
    work_dir, checkpoint = trained
    out = osp.join(work_dir, 'ots')
    proc = _python_tool([
        osp.join(REPO_ROOT, 'tools',
                 'test.py'), merger_config, checkpoint, '--work-dir', out,
        '--cfg-options', *TINY, *data_cfg_options(tiny_dataset)
    ],
                        cwd=work_dir)
    assert f'Load checkpoint from {checkpoint}' in proc.stdout
    assert 'Test metrics:' in proc.stdout
    assert osp.isfile(osp.join(out, 'test_metrics.json'))


def test_fine_tune_through_train_py(trained, merger_config, tiny_dataset,
                                    data_cfg_options):
    work_dir, checkpoint = trained
    out = osp.join(work_dir, 'finetune')
    proc = _python_tool([
        osp.join(REPO_ROOT, 'tools', 'train.py'), merger_config, '--work-dir',
        out, '--cfg-options', f'load_from={checkpoint}', *TINY,
        *data_cfg_options(tiny_dataset)
    ],
                        cwd=work_dir)
    assert f'Load checkpoint from {checkpoint}' in proc.stdout
    base = load_runner_checkpoint(checkpoint)['state_dict']
    tuned = load_runner_checkpoint(osp.join(out, 'epoch_1.pth'))['state_dict']
    fuse = [
        k for k in tuned if k.startswith('backbone.merge_schedule.')
        and k.endswith('fuse.weight')
    ]
    assert len(fuse) == 2
    for key in fuse:
        # Started at the identity on the appearance half (fuse_init), and
        # one epoch at the schedule's warm-up learning rate moved it little.
        appearance = tuned[key][:, :32]
        assert torch.dist(appearance, torch.eye(32)) < 0.5
    # Fine-tuning started from the trained blocks, not from a fresh init:
    # they moved less than the distance between two random inits.
    key = 'backbone.blocks.0.mlp.layers.0.0.weight'
    key = key if key in base else next(
        k for k in base if k.startswith('backbone.blocks.0')
        and k.endswith('weight') and base[k].dim() == 2)
    moved = torch.dist(tuned[key], base[key])
    assert moved < 0.5 * base[key].norm()
