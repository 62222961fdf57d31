"""``fused=True`` for optimizers where the running torch has it.

The zoo's AdamW schedules ask for ``fused=True`` (one kernel per tensor;
about half the optimizer time, measured with torch 2.9). torch has fused
AdamW for CUDA from 2.0 but for CPU only from 2.4; torch 2.1 to 2.3 raise
``RuntimeError: `fused=True` requires all the params to be floating point
Tensors of supported devices`` when the model is on CPU. This constructor
keeps ``fused=True`` wherever torch supports it and otherwise drops it (the
same update, torch's default implementation) with a one-line warning, so the
configs run on the whole torch range of ``setup.py``.
"""
import logging
import re
from typing import Optional

import torch
import torch.nn as nn
from mmaction.registry import OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.logging import print_log
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper

__all__ = ['FusedFallbackOptimWrapperConstructor', 'fused_supported']


def fused_supported(device_type: str,
                    torch_version: Optional[str] = None) -> bool:
    """Whether torch's fused Adam / AdamW / SGD run on ``device_type``.

    Args:
        device_type (str): ``'cpu'``, ``'cuda'``, ...
        torch_version (str, optional): Defaults to the running torch's.

    Returns:
        bool: False for CPU before torch 2.4; True otherwise (other devices
        are left to torch).
    """
    version = torch_version or torch.__version__
    major_minor = tuple(int(v) for v in re.findall(r'\d+', version)[:2])
    return device_type != 'cpu' or major_minor >= (2, 4)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class FusedFallbackOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """MMEngine's default constructor, but ``fused=True`` is dropped (with
    a one-line warning) where the running torch has no fused kernel for
    the model's device. Set it as ``optim_wrapper.constructor``."""

    def __call__(self, model: nn.Module) -> OptimWrapper:
        if self.optimizer_cfg.get('fused'):
            param = next(model.parameters(), None)
            device = param.device.type if param is not None else 'cpu'
            if not fused_supported(device):
                print_log(
                    f'torch {torch.__version__} has no fused '
                    f'{self.optimizer_cfg.get("type")} on {device} (torch >='
                    ' 2.4): fused=True is dropped (same update, slower).',
                    logger='current',
                    level=logging.WARNING)
                self.optimizer_cfg = dict(self.optimizer_cfg)
                self.optimizer_cfg.pop('fused')
        return super().__call__(model)
