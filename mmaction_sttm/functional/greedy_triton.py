"""Greedy most-orthogonal selection in one GPU kernel (Triton).

:func:`mmaction_sttm.functional.sttm.most_orthogonal_select` picks tokens one
at
a time; as a torch loop, each pick is three small kernels, about 2,200 kernel
launches per ViT-B 8x224 forward (735 picks). On a GPU those launches, not
the arithmetic, would set the cost. Here one program per sample (or frame)
runs the whole loop: the running maximum stays in registers, and a pick is
an argmin over it and a maximum with one row of the similarity matrix. The
picks are the loop's, index for index (both break argmin ties towards the
lowest index).

Used automatically for CUDA tensors when Triton is installed (it comes with
the CUDA builds of torch); the torch loop serves everything else. The tests
run this kernel on CPU with Triton's interpreter (``TRITON_INTERPRET=1``).
"""
import warnings

import torch
from torch import Tensor

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU-only torch builds come without Triton
    triton = None

# Longest token sequence one program holds in registers.
MAX_TOKENS = 16384

_broken = False

if triton is not None:

    @triton.jit
    def _greedy_kernel(sim_ptr, start_ptr, out_ptr, length, num: tl.constexpr,
                       BLOCK: tl.constexpr):
        # `num` is a compile-time constant: a model has a few distinct
        # values (one per merge), each compiled once.
        sample = tl.program_id(0).to(tl.int64)
        offs = tl.arange(0, BLOCK)
        valid = offs < length
        sim = sim_ptr + sample * length * length
        out = out_ptr + sample * num
        first = tl.load(start_ptr + sample)
        tl.store(out, first)
        running = tl.load(
            sim + first * length + offs, mask=valid, other=float('inf'))
        for step in range(1, num):
            pick = tl.argmin(running, axis=0, tie_break_left=True)
            tl.store(out + step, pick.to(tl.int64))
            row = tl.load(
                sim + pick.to(tl.int64) * length + offs,
                mask=valid,
                other=float('inf'))
            running = tl.maximum(running, row)


def supports(sim: Tensor) -> bool:
    """Whether :func:`greedy_select` can take ``sim`` here."""
    return (triton is not None and not _broken and sim.is_cuda
            and sim.dtype == torch.float32 and sim.shape[-1] <= MAX_TOKENS)


def greedy_select(sim: Tensor, start: Tensor, num: int) -> Tensor:
    """Run the greedy selection on a prepared similarity matrix.

    Args:
        sim (Tensor): ``|cos|`` between tokens ``(B, L, L)``, float32, with
            an infinite diagonal.
        start (Tensor): First pick per sample ``(B,)`` (long).
        num (int): Number of picks, ``1 <= num <= L``.

    Returns:
        Tensor: Picked indices ``(B, num)`` (long) in the order picked.
    """
    batch, length, _ = sim.shape
    out = torch.empty(batch, num, dtype=torch.long, device=sim.device)
    if batch == 0:
        return out
    block = max(16, triton.next_power_of_2(length))
    _greedy_kernel[(batch, )](
        sim.contiguous(),
        start.to(torch.long).contiguous(),
        out,
        length,
        num,
        BLOCK=block,
        num_warps=4 if block <= 1024 else 8)
    return out


def disable(error: Exception) -> None:
    """Fall back to the torch loop for the rest of the process (a GPU or
    driver that Triton cannot compile for), saying why once."""
    global _broken
    _broken = True
    warnings.warn(f'STTM: the Triton greedy-selection kernel failed '
                  f'({type(error).__name__}: {error}); using the torch loop')
