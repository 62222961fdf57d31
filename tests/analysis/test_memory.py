"""The peak-memory counter of the benchmark and the tests."""
import torch

from mmaction_sttm.analysis import peak_memory_mib


def test_cpu_peak_memory_counts_each_allocation_once():
    """Eight 1024-wide linear layers on 4096 rows (16 MiB per activation):
    at inference at most two activations are alive at once."""
    model = torch.nn.Sequential(
        *[torch.nn.Linear(1024, 1024) for _ in range(8)])
    x = torch.randn(4096, 1024)

    def forward():
        with torch.inference_mode():
            model(x)

    peak = peak_memory_mib(forward, torch.device('cpu'))
    assert 16 <= peak <= 48
