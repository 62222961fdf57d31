"""mmaction_sttm.compat and the checkpoint hooks: MMEngine checkpoints load
with weights_only=True under the zoo's ``SafeCheckpointLoadingHook``, foreign
pickles are refused without running, distributed setup on CPU, atomic
checkpoint writes."""
import logging
import os
import os.path as osp
import pickle

import pytest
import torch
import torch.distributed as torch_dist
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint
from torch.utils.data import Dataset

from mmaction_sttm import compat
from mmaction_sttm.compat import setup_distributed
from mmaction_sttm.engine import checkpoint_loading
from mmaction_sttm.engine.checkpoint_loading import (CHECKPOINT_SAFE_GLOBALS,
                                                     UnsafeCheckpointError)

RUNTIME = Config.fromfile(
    osp.join(
        osp.dirname(osp.dirname(osp.abspath(__file__))), 'configs', '_base_',
        'default_runtime.py'))


class ToyModel(BaseModel):
    """Linear classifier with a BatchNorm (buffers in the state dict)."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(4)
        self.fc = nn.Linear(4, 2)

    def forward(self, inputs, labels, mode='tensor'):
        logits = self.fc(self.norm(torch.stack(inputs)))
        if mode == 'loss':
            return dict(loss=F.cross_entropy(logits, torch.as_tensor(labels)))
        return list(logits.argmax(1) == torch.as_tensor(labels))


class ToyDataset(Dataset):
    metainfo = dict(classes=('a', 'b'))

    def __len__(self) -> int:
        return 16

    def __getitem__(self, index: int) -> dict:
        generator = torch.Generator().manual_seed(index)
        label = index % 2
        return dict(
            inputs=torch.randn(4, generator=generator) + 2 * label,
            labels=label)


def toy_runner(work_dir: str, max_epochs: int, **kwargs) -> Runner:
    """A Runner with everything a real one saves: AdamW state, two parameter
    schedulers, EMA weights, validation metrics and a best checkpoint. It
    loads checkpoints through the hook that the zoo's runtime config names.
    """
    from mmengine.evaluator import BaseMetric

    class Accuracy(BaseMetric):

        def process(self, data_batch, data_samples):
            self.results.extend(bool(x) for x in data_samples)

        def compute_metrics(self, results):
            import numpy as np
            return dict(acc=np.float64(np.mean(results)))

    loader = dict(
        dataset=ToyDataset(),
        sampler=dict(type='DefaultSampler', shuffle=True),
        batch_size=4)
    return Runner(
        model=ToyModel(),
        work_dir=work_dir,
        train_dataloader=loader,
        val_dataloader=dict(loader, sampler=dict(type='DefaultSampler')),
        val_cfg=dict(),
        val_evaluator=dict(type=Accuracy),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-2)),
        param_scheduler=[
            dict(
                type='LinearLR',
                start_factor=0.1,
                end=1,
                convert_to_iter_based=True),
            dict(type='CosineAnnealingLR', T_max=2, begin=1, end=3)
        ],
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', save_best='auto'),
            checkpoint_loading=RUNTIME.default_hooks.checkpoint_loading),
        custom_hooks=[dict(type='EMAHook')],
        default_scope='mmaction',
        randomness=dict(seed=0),
        **kwargs)


@pytest.fixture(autouse=True, scope='module')
def _restore_default_scope():
    """The toy Runners of this module make MMEngine's scope the current
    default scope; give later modules back the one they had (they build
    MMAction2 models by name)."""
    from mmengine.registry import DefaultScope
    saved = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict = saved


# The weights-only loader and its allow-list need torch >= 2.6; before that
# they turn themselves off (test_old_torch_keeps_mmengine_loaders) and
# MMEngine's loaders load everything (test_load_from_and_resume).
needs_safe_loading = pytest.mark.skipif(
    not checkpoint_loading.supported(),
    reason=f'torch {torch.__version__} < 2.6: safe checkpoint loading is off')


@pytest.fixture(scope='module')
def runner_checkpoint(tmp_path_factory) -> str:
    """A checkpoint written by mmengine's own Runner after 2 epochs."""
    work_dir = str(tmp_path_factory.mktemp('toy_runner'))
    toy_runner(work_dir, max_epochs=2).train()
    return osp.join(work_dir, 'epoch_2.pth')


@needs_safe_loading
def test_runner_checkpoint_needs_exactly_the_allow_list(runner_checkpoint):
    """The allow-list is what a Runner writes: nothing is missing and no
    listed global but the numpy dtype classes is unused."""
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint
    with torch.serialization.safe_globals(list(CHECKPOINT_SAFE_GLOBALS)):
        assert unsafe(runner_checkpoint) == []
    # Without our allow-list torch refuses exactly the listed globals.
    listed = {name for _, name in CHECKPOINT_SAFE_GLOBALS}
    needed = set(unsafe(runner_checkpoint))
    assert needed, 'torch allows these globals by itself: compat is obsolete'
    assert needed <= listed
    unused = {
        name
        for name in listed - needed
        if not name.startswith('numpy.dtypes.')  # BUILD targets, not globals
        and not name.startswith('numpy.core.')  # numpy 1's module name
    }
    assert unused == set()


def test_load_from_and_resume(runner_checkpoint, tmp_path, safe_loading):
    ckpt = _load_checkpoint(runner_checkpoint, map_location='cpu')
    history = ckpt['message_hub']['log_scalars']['train/loss']
    assert isinstance(history, HistoryBuffer)
    assert history.statistics('min') <= history.mean() <= history.max()
    assert {'optimizer', 'param_schedulers', 'ema_state_dict'} <= set(ckpt)

    # load_from: weights only, training starts at epoch 0.
    runner = toy_runner(
        str(tmp_path / 'load_from'), max_epochs=1, load_from=runner_checkpoint)
    runner.train()
    assert runner.epoch == 1

    # resume: optimizer, schedulers and message hub continue at epoch 2.
    runner = toy_runner(
        str(tmp_path / 'resume'),
        max_epochs=3,
        load_from=runner_checkpoint,
        resume=True)
    runner.train()
    assert runner.epoch == 3
    assert runner.iter == 3 * 4
    resumed = _load_checkpoint(
        str(tmp_path / 'resume' / 'epoch_3.pth'), map_location='cpu')
    assert resumed['meta']['iter'] == 12
    assert resumed['optimizer']['state'][0]['step'].item() == 12


@needs_safe_loading
def test_amp_loss_scaler_state_loads(tmp_path):
    """AmpOptimWrapper adds the GradScaler's state: plain floats and ints."""
    scaler = torch.amp.GradScaler('cpu', init_scale=1024.)
    scaler.scale(torch.ones(1, requires_grad=True))  # creates its state
    state = dict(
        state_dict=nn.Linear(2, 2).state_dict(),
        optimizer=dict(loss_scaler=scaler.state_dict()))
    assert state['optimizer']['loss_scaler']['scale'] == 1024.
    path = str(tmp_path / 'amp.pth')
    torch.save(state, path)
    loaded = checkpoint_loading.load_from_local(path)
    assert loaded['optimizer']['loss_scaler'] == scaler.state_dict()


class SystemCall:
    """Pickles to os.system(command): runs the command when unpickled."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command, )


class Foreign:
    """A class nobody allow-listed."""


class AttributeLookup:
    """Pickles to getattr(HistoryBuffer, '__init__'): getattr is only allowed
    for HistoryBuffer's statistics methods."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


@needs_safe_loading
@pytest.mark.parametrize('payload, offending', [
    (lambda marker: SystemCall(f'touch {marker}'),
     os.system.__module__ + '.system'),
    (lambda marker: Foreign(), f'{__name__}.Foreign'),
    (lambda marker: AttributeLookup(), "getattr(<class 'mmengine.logging"),
])
@pytest.mark.parametrize('zip_format', [True, False])
def test_foreign_pickle_is_refused(tmp_path, safe_loading, payload, offending,
                                   zip_format):
    marker = tmp_path / 'code_ran'
    path = str(tmp_path / 'evil.pth')
    torch.save(
        dict(state_dict=nn.Linear(2, 2).state_dict(), meta=payload(marker)),
        path,
        _use_new_zipfile_serialization=zip_format)
    with pytest.raises(UnsafeCheckpointError) as info:
        _load_checkpoint(path, map_location='cpu')  # mmengine's entry point
    message = str(info.value)
    assert path in message
    assert offending in message
    assert isinstance(info.value, pickle.UnpicklingError)
    assert not marker.exists()


@needs_safe_loading
def test_runner_refuses_foreign_pickle_on_resume(tmp_path, safe_loading_hooks):
    marker = tmp_path / 'code_ran'
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, meta=SystemCall(f'touch {marker}')), path)
    runner = toy_runner(
        str(tmp_path / 'work'), max_epochs=1, load_from=path, resume=True)
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        runner.train()
    assert not marker.exists()


@pytest.mark.parametrize('version', ['2.1.2', '2.5.1+cu124'])
def test_old_torch_keeps_mmengine_loaders(monkeypatch, version):
    """Below torch 2.6 the safe loading turns itself off: one line of
    warning, no allow-list entry and no loader scheme registered."""
    monkeypatch.setattr(torch, '__version__', version)
    assert not checkpoint_loading.supported()
    schemes = dict(CheckpointLoader._schemes)
    calls = []
    monkeypatch.setattr(
        torch.serialization,
        'add_safe_globals',
        lambda *args: calls.append(args),
        raising=False)
    record = []
    monkeypatch.setattr(checkpoint_loading, 'print_log',
                        lambda msg, **kwargs: record.append((msg, kwargs)))
    with checkpoint_loading.safe_checkpoint_loading():
        assert CheckpointLoader._schemes == schemes
    assert len(record) == 1
    message, kwargs = record[0]
    assert kwargs['level'] == logging.WARNING
    assert '\n' not in message
    assert f'torch {version}' in message and 'torch >= 2.6' in message
    assert calls == [] and CheckpointLoader._schemes == schemes


def test_supported_from_torch_2_6(monkeypatch):
    for version, expected in [('2.6.0', True), ('2.14.1+cu130', True),
                              ('2.5.1', False), ('1.13.1', False)]:
        monkeypatch.setattr(torch, '__version__', version)
        assert checkpoint_loading.supported() is expected, version


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        checkpoint_loading.load_from_local(str(tmp_path / 'nope.pth'))


def test_setup_distributed_cpu(monkeypatch, free_port):
    """On CPU: gloo group from torchrun's variables, DDP without devices."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(free_port))
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('LOCAL_RANK', '0')
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    try:
        setup_distributed(cfg, 'pytorch')
        assert torch_dist.is_initialized()
        assert torch_dist.get_backend() == 'gloo'
        assert cfg.env_cfg.dist_cfg.backend == 'gloo'
        assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
        assert cfg.model_wrapper_cfg.device_ids is None

        # DDP builds with that config on a CPU module.
        from mmengine.registry import MODEL_WRAPPERS
        wrapped = MODEL_WRAPPERS.build(
            cfg.model_wrapper_cfg, default_args=dict(module=ToyModel()))
        assert wrapped.device_ids is None
    finally:
        compat._destroy_process_group()
    assert not torch_dist.is_initialized()


def test_finish_distributed_waits_then_destroys(monkeypatch):
    """A finished run meets the other ranks at a barrier before the group
    goes (gloo's worker thread frees the last collective meanwhile), and
    without a group it does nothing."""
    calls = []
    monkeypatch.setattr(torch_dist, 'barrier', lambda: calls.append('barrier'))
    monkeypatch.setattr(torch_dist, 'destroy_process_group',
                        lambda: calls.append('destroy'))
    monkeypatch.setattr(torch_dist, 'is_initialized', lambda: False)
    compat.finish_distributed()
    assert calls == []
    monkeypatch.setattr(torch_dist, 'is_initialized', lambda: True)
    compat.finish_distributed()
    assert calls == ['barrier', 'destroy']


def test_setup_distributed_keeps_user_wrapper(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(torch_dist, 'is_initialized', lambda: True)
    cfg = Config(
        dict(
            model_wrapper_cfg=dict(
                type='MMDistributedDataParallel',
                find_unused_parameters=True)))
    setup_distributed(cfg, 'pytorch')
    assert cfg.model_wrapper_cfg.find_unused_parameters is True
    assert cfg.model_wrapper_cfg.device_ids is None


def test_setup_distributed_leaves_gpu_and_none_alone(monkeypatch):
    cfg = Config(dict(env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    setup_distributed(cfg, 'none')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    setup_distributed(cfg, 'pytorch')
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert 'model_wrapper_cfg' not in cfg
    assert not torch_dist.is_initialized()


@pytest.mark.parametrize('version, error', [('2.1.2', 'needs CUDA'),
                                            ('2.9.1', None)])
def test_setup_distributed_cpu_fsdp(monkeypatch, version, error):
    """An FSDP strategy on CPU gets the CPU wrapper; torch 2.1's FSDP, which
    cannot run on CPU, is one error before any process group starts."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(torch, '__version__', version)
    monkeypatch.setattr(torch_dist, 'is_initialized', lambda: True)
    cfg = Config(
        dict(
            runner_type='ResumableFlexibleRunner',
            strategy=dict(type='ResumableFSDPStrategy')))
    if error:
        with pytest.raises(ValueError, match=error):
            setup_distributed(cfg, 'pytorch')
        assert 'env_cfg' not in cfg  # nothing set up
        return
    setup_distributed(cfg, 'pytorch')
    assert cfg.strategy.model_wrapper.type == 'CPUFullyShardedDataParallel'


def test_setup_distributed_without_torchrun_is_clear(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    for name in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match='torchrun'):
        setup_distributed(Config(), 'pytorch')


# --------------------------------------------------------------------------
# Atomic checkpoint writes (the real kill is in tests/tools/test_interruption)
# --------------------------------------------------------------------------


def test_atomic_write_replaces_whole_files(tmp_path):
    import os

    from mmengine.fileio import get_file_backend

    from mmaction_sttm.engine.safe_checkpoint import (AtomicLocalBackend,
                                                      atomic_write)
    target = tmp_path / 'sub' / 'epoch_1.pth'
    atomic_write(b'first', str(target))
    assert target.read_bytes() == b'first'
    # A write that fails half-way leaves the old file and no temporary.
    with pytest.raises(TypeError):
        atomic_write(object(), str(target))
    assert target.read_bytes() == b'first'
    assert os.listdir(target.parent) == ['epoch_1.pth']
    # Permissions as open() would give.
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    # The 'atomic_local' backend (checkpoints, last_checkpoint) goes
    # through it; MMEngine's own local backend is left as it is.
    backend = get_file_backend(
        str(target), backend_args=dict(backend='atomic_local'))
    assert isinstance(backend, AtomicLocalBackend)
    backend.put(b'second', str(target))
    backend.put_text('third', str(tmp_path / 'last_checkpoint'))
    assert target.read_bytes() == b'second'
    assert (tmp_path / 'last_checkpoint').read_text() == 'third'
    assert type(get_file_backend(str(target))).put is not \
        AtomicLocalBackend.put


def test_safe_checkpoint_hook_writes_through_the_atomic_backend(tmp_path):
    from mmengine.registry import HOOKS

    from mmaction_sttm.engine.safe_checkpoint import AtomicLocalBackend
    hook = HOOKS.build(
        dict(
            type='mmaction.SafeCheckpointHook',
            interval=1,
            max_keep_ckpts=1,
            save_best='auto'))
    assert hook.backend_args == dict(backend='atomic_local')
    work_dir = str(tmp_path / 'run')
    runner = Runner(
        model=ToyModel(),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=4),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        default_hooks=dict(checkpoint=hook))
    runner.train()
    assert isinstance(hook.file_backend, AtomicLocalBackend)
    # max_keep_ckpts=1: only the newest, and last_checkpoint names it.
    assert sorted(f for f in os.listdir(work_dir) if f.endswith('.pth')) \
        == ['epoch_2.pth']
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work_dir, 'epoch_2.pth')


def test_default_runtime_names_the_safe_hooks():
    assert RUNTIME.default_hooks.checkpoint.type == 'SafeCheckpointHook'
    assert RUNTIME.default_hooks.checkpoint_loading.type == \
        'SafeCheckpointLoadingHook'


@pytest.mark.parametrize('version, device, fused',
                         [('2.1.2', 'cpu', False), ('2.3.1', 'cpu', False),
                          ('2.4.0', 'cpu', True), ('2.1.2', 'cuda', True),
                          ('2.14.1+cu130', 'cpu', True)])
def test_fused_supported(version, device, fused):
    from mmaction_sttm.engine.optim_constructor import fused_supported
    assert fused_supported(device, version) is fused


def test_fused_optimizer_falls_back_in_one_line(monkeypatch):
    """The zoo's fused AdamW builds on every torch: kept where torch has the
    kernel, dropped with one line of warning where it has not."""
    from mmaction.registry import OPTIM_WRAPPER_CONSTRUCTORS

    from mmaction_sttm.engine import optim_constructor
    constructor = OPTIM_WRAPPER_CONSTRUCTORS.get(
        'FusedFallbackOptimWrapperConstructor')
    assert constructor is \
        optim_constructor.FusedFallbackOptimWrapperConstructor

    def build():
        return constructor(
            dict(optimizer=dict(type='AdamW', lr=1e-3, fused=True)))(
                model)

    model = nn.Linear(2, 2)
    record = []
    monkeypatch.setattr(optim_constructor, 'print_log',
                        lambda msg, **kwargs: record.append(msg))
    monkeypatch.setattr(torch, '__version__', '2.3.1')
    wrapper = build()
    assert len(record) == 1 and '\n' not in record[0]
    assert 'fused=True is dropped' in record[0]
    assert not wrapper.optimizer.defaults.get('fused')
    monkeypatch.undo()
    if optim_constructor.fused_supported('cpu'):
        assert build().optimizer.defaults['fused'] is True
