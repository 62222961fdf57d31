"""What an FSDP strategy config names for a merging backbone: its wrap
policy and activation-checkpointing test, registered in MMEngine's
``FUNCTIONS`` (where ``FSDPStrategy`` and its model wrapper look names up);
the two MMEngine classes that resuming a sharded run needs
(:class:`ResumableFSDPStrategy`, :class:`ResumableFlexibleRunner`); and the
consolidation of a sharded checkpoint (:func:`consolidate_sharded_checkpoint`,
``tools/consolidate_checkpoint.py``).

::

    runner_type = 'ResumableFlexibleRunner'
    strategy = dict(
        type='ResumableFSDPStrategy',
        model_wrapper=dict(auto_wrap_policy='merging_block_wrap_policy'),
        activation_checkpointing=dict(
            check_fn='checkpointed_merging_block'))

Every transformer block of a merging backbone runs inside its own module's
forward (:class:`~mmaction_sttm.models.backbones.base.MergingBlock`), so each
block can be an FSDP unit (its parameters gathered for that block alone) and
a checkpointed region; the merges between blocks stay in the root unit,
outside any recomputed region.
"""
import os
import os.path as osp
import re
from typing import List, Optional

import torch
from mmengine._strategy import FSDPStrategy
from mmengine.registry import FUNCTIONS, RUNNERS, STRATEGIES
from mmengine.runner import FlexibleRunner
from torch import nn
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp import MixedPrecision

from mmaction_sttm.models.backbones.base import is_merging_block

__all__ = [
    'merging_block_wrap_policy', 'checkpointed_merging_block',
    'ResumableFSDPStrategy', 'ResumableFlexibleRunner',
    'register_sharded_state_dict_configs', 'consolidate_sharded_checkpoint'
]


def merging_block_wrap_policy(module: nn.Module,
                              recurse: bool,
                              nonwrapped_numel: int,
                              mixed_precision: Optional[dict] = None,
                              **_) -> bool:
    """FSDP's auto-wrap policy: one unit per transformer block of a merging
    backbone (the rest of the model, mergers included, is the root unit).

    With ``mixed_precision``, the block units, and only they, compute in
    lower precision: what runs between blocks (embedding, merges, final
    norm, head, loss and metrics) stays in the model's float32, as MMAction2's
    heads expect (they score in numpy, which has no bfloat16), and each
    block hands back its output in the dtype it was given
    (:meth:`~mmaction_sttm.models.backbones.base.MergingBackbone.checkpointed_block`).

    Args:
        module (nn.Module): The module FSDP asks about.
        recurse (bool): Whether FSDP asks to descend into ``module``.
        nonwrapped_numel (int): Its parameters not yet wrapped (unused).
        mixed_precision (dict, optional): ``torch.distributed.fsdp.
            MixedPrecision`` arguments for the block units, dtypes by name
            (e.g. ``param_dtype='bfloat16'``). None: the wrapper's own.

    Returns:
        bool: Whether to descend (always) or to wrap ``module`` (a block).
    """
    if recurse:
        return True
    if not is_merging_block(module):
        return False
    if mixed_precision is not None:
        # FSDP's per-module override of the wrapping arguments, which its
        # own _module_classes_to_ignore uses (torch 2.1 to 2.14).
        module._wrap_overrides = dict(
            mixed_precision=MixedPrecision(
                **{
                    key:
                    getattr(torch, value) if key.endswith('_dtype')
                    and isinstance(value, str) else value
                    for key, value in mixed_precision.items()
                }))
    return True


FUNCTIONS.register_module(
    name='merging_block_wrap_policy', module=merging_block_wrap_policy)


def checkpointed_merging_block(module: nn.Module) -> bool:
    """The ``check_fn`` of a strategy's ``activation_checkpointing``: every
    transformer block of a merging backbone is a checkpointed region.

    It also drops the FSDP wrap override that
    :func:`merging_block_wrap_policy` left on the block (torch's
    ``apply_activation_checkpointing`` wraps through the same helper as
    FSDP, and would pass the override to the checkpoint wrapper).

    Args:
        module (nn.Module): The module asked about.

    Returns:
        bool: Whether ``module`` is a merging block.
    """
    if not is_merging_block(module):
        return False
    module.__dict__.pop('_wrap_overrides', None)
    return True


FUNCTIONS.register_module(
    name='checkpointed_merging_block', module=checkpointed_merging_block)


def register_sharded_state_dict_configs() -> None:
    """Make ``ShardedStateDictConfig`` and ``ShardedOptimStateDictConfig``
    nameable in a strategy's ``state_dict_cfg`` (once).

    MMEngine 0.10's ``FSDPStrategy`` builds ``state_dict_config`` from its
    ``FSDP_CONFIGS`` registry, which holds the full and local configs only,
    so a config cannot ask for torch's sharded state dicts (one file per
    rank, every parameter under its own name).
    """
    from mmengine._strategy.fsdp import FSDP_CONFIGS
    from torch.distributed.fsdp import (ShardedOptimStateDictConfig,
                                        ShardedStateDictConfig)
    for cls in (ShardedStateDictConfig, ShardedOptimStateDictConfig):
        if FSDP_CONFIGS.get(cls.__name__) is None:
            FSDP_CONFIGS.register_module(module=cls)


@STRATEGIES.register_module()
class ResumableFSDPStrategy(FSDPStrategy):
    """MMEngine's ``FSDPStrategy`` with the two fixes that resuming a
    sharded run needs; a config names it as ``strategy.type``. Delete it
    when MMEngine has them (both are in 0.10.7):

    - ``load_optim_state_dict`` calls torch's
      ``FSDP.optim_state_dict_to_load(state_dict, model, optim)``, but since
      torch 2.0 the order is ``(model, optim, state_dict)``: every resume
      of an FSDP run fails in it. Here the arguments are in torch's order.
    - ``state_dict_cfg`` cannot name ``ShardedStateDictConfig`` /
      ``ShardedOptimStateDictConfig`` (see
      :func:`register_sharded_state_dict_configs`); here it can.

    Args:
        *args, **kwargs: ``FSDPStrategy``'s arguments.
    """

    def __init__(self, *args, **kwargs) -> None:
        register_sharded_state_dict_configs()
        super().__init__(*args, **kwargs)

    def load_optim_state_dict(self, state_dict: dict) -> None:
        """Load the optimizer state of :meth:`optim_state_dict`.

        Args:
            state_dict (dict): The optimizer state dict, in the strategy's
                ``state_dict_type`` (sharded: this rank's shard).
        """
        optim_state_dict = FSDP.optim_state_dict_to_load(
            self.model, self.optim_wrapper.optimizer, state_dict)
        self.optim_wrapper.load_state_dict(optim_state_dict)


@RUNNERS.register_module()
class ResumableFlexibleRunner(FlexibleRunner):
    """MMEngine's ``FlexibleRunner``, saving the epoch and iteration that a
    checkpoint hook asks for; a config names it as ``runner_type``. Delete
    it when MMEngine has the fix (0.10.7 has not).

    ``FlexibleRunner.save_checkpoint`` overwrites ``meta['epoch']`` and
    ``meta['iter']`` with its own count, where ``Runner.save_checkpoint``
    keeps what the caller gave (``setdefault``). ``CheckpointHook`` saves
    the epoch's checkpoint again after a validation that found a new best,
    with the epoch it means; the overwritten count is one epoch ahead, so a
    run resumed from that checkpoint skipped an epoch.
    """

    def save_checkpoint(self,
                        out_dir: str,
                        filename: str,
                        *args,
                        meta: Optional[dict] = None,
                        **kwargs) -> None:
        """``FlexibleRunner.save_checkpoint``, keeping ``meta``'s epoch and
        iteration (as ``Runner.save_checkpoint`` does)."""
        self._kept_position = {
            key: meta[key]
            for key in ('epoch', 'iter') if meta and key in meta
        }
        try:
            super().save_checkpoint(
                out_dir, filename, *args, meta=meta, **kwargs)
        finally:
            self._kept_position = {}

    def call_hook(self, fn_name: str, **kwargs) -> None:
        """Put the kept position back into a checkpoint's ``meta`` before
        the hooks see it and it is written."""
        kept = getattr(self, '_kept_position', None)
        if fn_name == 'before_save_checkpoint' and kept:
            kwargs['checkpoint']['meta'].update(kept)
        super().call_hook(fn_name, **kwargs)


def _rank_files(src: str) -> List[str]:
    """The ``rank{i}.pth`` files of a sharded checkpoint folder, in rank
    order; ``ValueError`` (naming the folder) unless they are 0..n-1."""
    if not osp.isdir(src):
        raise ValueError(f'{src} is not a sharded checkpoint folder (a '
                         'folder of rank{i}.pth files)')
    ranks = sorted(
        int(m.group(1)) for m in (re.fullmatch(r'rank(\d+)\.pth', name)
                                  for name in os.listdir(src)) if m)
    if not ranks or ranks != list(range(len(ranks))):
        raise ValueError(f'{src}: expected rank0.pth .. rank{{n-1}}.pth, '
                         f'found ranks {ranks}')
    return [osp.join(src, f'rank{rank}.pth') for rank in ranks]


def _gather_shards(rank: int, files: List[str], port: int, out: str) -> None:
    """One process of :func:`consolidate_sharded_checkpoint`."""
    import torch.distributed as dist
    from torch.distributed._shard.sharded_tensor import ShardedTensor

    from .checkpoint_loading import load_from_local
    dist.init_process_group(
        'gloo',
        init_method=f'tcp://127.0.0.1:{port}',
        rank=rank,
        world_size=len(files))
    try:
        checkpoint = load_from_local(files[rank], map_location='cpu')
        state = {}
        for key, value in checkpoint['state_dict'].items():
            if isinstance(value, ShardedTensor):
                full = torch.empty(value.size(), dtype=value.dtype) \
                    if rank == 0 else None
                value.gather(dst=0, out=full)
                value = full
            state[key] = value
        if rank == 0:
            whole = {
                key: checkpoint[key]
                for key in ('meta', 'message_hub') if key in checkpoint
            }
            whole['state_dict'] = state
            tmp = f'{out}.tmp'
            torch.save(whole, tmp)
            os.replace(tmp, out)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def consolidate_sharded_checkpoint(src: str, out: str) -> None:
    """Write the single-file checkpoint of a sharded one.

    A run with ``state_dict_type='SHARDED_STATE_DICT'`` saves each
    checkpoint as a folder of ``rank{i}.pth`` files, each holding its
    rank's shard of every parameter. This starts one CPU process per rank
    file (gloo; reading a shard needs the process group of as many ranks
    as wrote it), gathers every parameter whole on rank 0 and writes a
    checkpoint with the model's ``state_dict``, ``meta`` and
    ``message_hub``: what ``tools/test.py``, ``load_from`` and the
    converters read. The optimizer state is not kept (resume from the
    sharded folder).

    Args:
        src (str): The sharded checkpoint folder.
        out (str): The checkpoint file to write.

    Raises:
        ValueError: ``src`` is not a folder of ``rank0.pth`` ..
            ``rank{n-1}.pth``.
    """
    import socket

    import torch.multiprocessing as mp
    files = _rank_files(src)
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    mp.spawn(
        _gather_shards, args=(files, port, out), nprocs=len(files), join=True)
