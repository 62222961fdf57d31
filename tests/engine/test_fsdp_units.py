"""Per-block FSDP units and the strategy's activation checkpointing
(:mod:`mmaction_sttm.engine.fsdp`) in every catalog family, with a merger:
on 2 processes over gloo, each transformer block is an FSDP unit and a
checkpointed region, and the gradients equal those of one process over the
same global batch; with the bf16 policy the blocks compute in bfloat16 and
the rest in float32."""
import functools
import os
import os.path as osp

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from tiny_backbones import BACKBONES, DIMS, FRAMES, SIZE

#: Multi-process FSDP runs: `make test-fsdp` (and CI), not `make test`.
pytestmark = pytest.mark.fsdp
WORLD = 2
#: STTM has parameters of its own in the root unit, between block units.
MERGER = dict(
    type='STTM',
    layers=(1, 2),
    stages=('spatiotemporal', 'spatiotemporal'),
    ratio=0.5)
BF16 = dict(
    param_dtype='bfloat16',
    reduce_dtype='float32',
    buffer_dtype='float32',
    cast_forward_inputs=True)


def _model(name: str) -> torch.nn.Module:
    from mmengine.registry import init_default_scope

    import mmaction_sttm  # noqa: F401
    from mmaction_sttm.registry import MODELS
    init_default_scope('mmaction')
    torch.manual_seed(0)
    model = MODELS.build(dict(BACKBONES[name], merger=MERGER))
    model.init_weights()
    with torch.no_grad():  # every parameter off its init (nothing at zero)
        for param in model.parameters():
            param.add_(0.02 * torch.randn_like(param))
    # Eval mode: TimeSformer's drop path (on by default) would draw other
    # random masks on each rank than in one process. FSDP gathers and the
    # strategy's checkpointing recompute in either mode.
    return model.eval()


def _batch() -> torch.Tensor:
    g = torch.Generator().manual_seed(5)
    return torch.randn(4, 3, FRAMES, SIZE, SIZE, generator=g)


def _loss(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    weight = torch.linspace(-1, 1, DIMS)
    return (model(x).float() * weight).sum(dim=1).square().mean()


def _clean(name: str) -> str:
    for wrapper in ('_fsdp_wrapped_module.', '_checkpoint_wrapped_module.'):
        name = name.replace(wrapper, '')
    return name


def _sharded(model: torch.nn.Module, mixed_precision=None):
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import \
        apply_activation_checkpointing
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    from mmaction_sttm.engine.fsdp import (checkpointed_merging_block,
                                           merging_block_wrap_policy)
    wrapped = FSDP(
        model,
        device_id=torch.device('cpu'),
        use_orig_params=True,
        auto_wrap_policy=functools.partial(
            merging_block_wrap_policy, mixed_precision=mixed_precision))
    apply_activation_checkpointing(
        wrapped, check_fn=checkpointed_merging_block)
    return wrapped


def _worker(rank: int, init_file: str, out: str) -> None:
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    torch.set_num_threads(1)
    dist.init_process_group(
        'gloo', init_method=f'file://{init_file}', rank=rank, world_size=WORLD)
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import \
        CheckpointWrapper
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    try:
        local = _batch()[2 * rank:2 * rank + 2]
        results = {}
        for name in sorted(BACKBONES):
            for precision in ('float32', 'bfloat16'):
                if precision == 'bfloat16' and name != 'videomae':
                    continue
                model = _model(name)
                wrapped = _sharded(model,
                                   BF16 if precision == 'bfloat16' else None)
                units = FSDP.fsdp_modules(wrapped)
                regions = [
                    m for m in wrapped.modules()
                    if isinstance(m, CheckpointWrapper)
                ]
                dtypes = [
                    getattr(unit.mixed_precision, 'param_dtype', None)
                    for unit in units
                ]
                features = wrapped(local)
                _loss(wrapped, local).backward()
                with FSDP.summon_full_params(wrapped, with_grads=True):
                    grads = {
                        _clean(n): p.grad.detach().clone()
                        for n, p in wrapped.named_parameters()
                        if p.grad is not None
                    }
                results[name, precision] = dict(
                    units=len(units),
                    regions=len(regions),
                    blocks=model.num_blocks,
                    dtypes=[str(d) for d in dtypes],
                    feature_dtype=str(features.dtype),
                    grads=grads)
        torch.save(results, osp.join(out, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


def test_block_units_and_checkpointing_match_one_process(tmp_path):
    mp.start_processes(
        _worker,
        args=(str(tmp_path / 'init'), str(tmp_path)),
        nprocs=WORLD,
        join=True,
        start_method='spawn')
    ranks = [torch.load(tmp_path / f'rank{r}.pth') for r in range(WORLD)]
    for name in sorted(BACKBONES):
        model = _model(name)
        _loss(model, _batch()).backward()
        expected = {
            n: p.grad
            for n, p in model.named_parameters() if p.grad is not None
        }
        assert any('merge_schedule' in n for n in expected), name
        for rank in ranks:
            got = rank[name, 'float32']
            # One unit per block and the root; every block checkpointed.
            assert got['units'] == got['blocks'] + 1, (name, got['units'])
            assert got['regions'] == got['blocks'], (name, got['regions'])
            assert got['grads'].keys() == expected.keys(), name
            for key, grad in expected.items():
                torch.testing.assert_close(
                    got['grads'][key],
                    grad,
                    rtol=1e-4,
                    atol=1e-6,
                    msg=f'{name}: {key}')
        if name != 'videomae':
            continue
        for rank in ranks:
            got = rank[name, 'bfloat16']
            # The block units compute in bf16, the root (embedding, merges,
            # norm, pooling) in float32, and the features come out float32.
            assert got['dtypes'][0] == 'None', got['dtypes']
            assert got['dtypes'][1:] == ['torch.bfloat16'] * got['blocks']
            assert got['feature_dtype'] == 'torch.float32'
            # bf16's 8-bit mantissa: the gradients agree in direction. (Those
            # of the root's parameters, which the backward pass reaches
            # through every bf16 block: summon_full_params gathers no
            # gradients of mixed-precision units.)
            keys = sorted(got['grads'])
            assert len(keys) >= 8 and 'patch_embed.projection.weight' in keys
            flat = torch.cat([got['grads'][k].flatten() for k in keys])
            ref = torch.cat([expected[k].flatten() for k in keys])
            cosine = torch.nn.functional.cosine_similarity(flat, ref, dim=0)
            assert cosine > 0.99, cosine
            assert not torch.equal(flat, ref)  # it did run in bf16
