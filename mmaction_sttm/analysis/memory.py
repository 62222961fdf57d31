"""Peak memory of a step, on CUDA and on CPU."""
from typing import Callable

import torch


def peak_memory_mib(fn: Callable[[], None], device: torch.device) -> float:
    """Peak memory (MiB) allocated while ``fn`` runs, on top of what exists
    before it.

    On CUDA, the allocator's peak; on CPU, the profiler's allocations and
    frees replayed in time order. Each event's *self* figure is used: the
    inclusive one counts an allocation again in every enclosing op
    (``aten::linear`` and its ``aten::addmm``).

    Args:
        fn (Callable): The step.
        device (torch.device): Where it runs.

    Returns:
        float: The peak in MiB.
    """
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU],
            profile_memory=True) as prof:
        fn()
    events = sorted((e for e in prof.events() if e.self_cpu_memory_usage),
                    key=lambda e: e.time_range.start)
    current = peak = 0
    for event in events:
        current += event.self_cpu_memory_usage
        peak = max(peak, current)
    return peak / 2**20
