"""RLT across ranks: with 2 processes over gloo whose videos keep different
token counts, every rank runs every reducer and merger module (no hang),
and the gradients, under DDP and under FSDP, equal those of one process
over the same global batch."""
import os
import os.path as osp

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from tiny_backbones import DIMS, FRAMES, SIZE

#: Multi-process FSDP runs: `make test-fsdp` (and CI), not `make test`.
pytestmark = pytest.mark.fsdp
WORLD = 2
#: A merger after RLT with parameters of its own (STTM's projections):
#: a rank that skipped it would hang the collectives.
MERGER = dict(
    type='STTM',
    layers=(1, 2),
    stages=('spatiotemporal', 'spatiotemporal'),
    ratio=0.4)


def _model() -> torch.nn.Module:
    import mmaction_sttm  # noqa: F401
    from mmaction_sttm.models.catalog import family
    from mmaction_sttm.registry import MODELS
    cfg = family('vit').tiny(DIMS, FRAMES, SIZE)
    cfg.update(reducer=dict(type='RLT', threshold=0.05), merger=MERGER)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    with torch.no_grad():  # every parameter off its init (nothing at zero)
        for param in model.parameters():
            param.add_(0.02 * torch.randn_like(param))
    return model


def _batch() -> torch.Tensor:
    """4 clips: rank 0 gets two mostly static ones, rank 1 two that move,
    so the ranks keep very different token counts."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(4, 3, FRAMES, SIZE, SIZE, generator=g)
    x[0, :, 1:] = x[0, :, :1]  # all static
    x[1, :, :, :SIZE // 2] = x[1, :, :1, :SIZE // 2]  # top half static
    return x


def _loss(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A loss that every output feature reaches (mean over the clips)."""
    weight = torch.linspace(-1, 1, DIMS)
    return (model(x) * weight).sum(dim=1).square().mean()


def _grads(model: torch.nn.Module) -> dict:
    return {
        name: param.grad.detach().clone()
        for name, param in model.named_parameters() if param.grad is not None
    }


def _worker(rank: int, wrapper: str, init_file: str, out: str) -> None:
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    torch.set_num_threads(1)
    dist.init_process_group(
        'gloo', init_method=f'file://{init_file}', rank=rank, world_size=WORLD)
    try:
        model = _model()
        local = _batch()[2 * rank:2 * rank + 2]
        with torch.no_grad():
            _, stages = model.forward_tokens(local)
        counts = stages[0].counts.tolist()
        if wrapper == 'ddp':
            from torch.nn.parallel import DistributedDataParallel
            wrapped = DistributedDataParallel(model)
            _loss(wrapped, local).backward()
            grads = _grads(model)
        else:
            from torch.distributed.fsdp import FullyShardedDataParallel
            wrapped = FullyShardedDataParallel(
                model, device_id=torch.device('cpu'), use_orig_params=True)
            _loss(wrapped, local).backward()
            with FullyShardedDataParallel.summon_full_params(
                    wrapped, with_grads=True):
                grads = {
                    name.replace('_fsdp_wrapped_module.', ''):
                    param.grad.detach().clone()
                    for name, param in wrapped.named_parameters()
                    if param.grad is not None
                }
        torch.save(
            dict(grads=grads, counts=counts), osp.join(out, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize('wrapper', ['ddp', 'fsdp'])
def test_ranks_with_different_token_counts_match_one_process(
        wrapper, tmp_path):
    mp.start_processes(
        _worker,
        args=(wrapper, str(tmp_path / 'init'), str(tmp_path)),
        nprocs=WORLD,
        join=True,
        start_method='spawn')
    ranks = [torch.load(tmp_path / f'rank{r}.pth') for r in range(WORLD)]
    # The ranks did hold different token counts ...
    assert sum(ranks[0]['counts']) < sum(ranks[1]['counts']), \
        [r['counts'] for r in ranks]
    # ... and end with the gradients of one process over the global batch
    # (each rank's loss is its half's mean; DDP and FSDP average them).
    model = _model()
    _loss(model, _batch()).backward()
    expected = _grads(model)
    for rank in ranks:
        assert rank['grads'].keys() == expected.keys()
        for name, grad in expected.items():
            torch.testing.assert_close(
                rank['grads'][name], grad, rtol=1e-4, atol=1e-6, msg=name)
    # STTM's own parameters were reached on both ranks.
    assert any('merge_schedule' in name and grad.abs().sum() > 0
               for name, grad in expected.items())
