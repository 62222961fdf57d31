"""The one-kernel greedy selection picks exactly what the torch loop picks.

No GPU here: the kernel runs on CPU under Triton's interpreter, in a
subprocess (``TRITON_INTERPRET`` must be set before the kernel is defined).
"""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from mmaction_sttm.functional import greedy_triton, sttm

SCRIPT = textwrap.dedent('''
    import torch
    from mmaction_sttm.functional import greedy_triton, sttm

    def loop(x, num, start):
        greedy_triton.supports = lambda sim: False
        return sttm.most_orthogonal_select(x, num, start)

    def kernel(x, num, start):
        # The dispatch inside most_orthogonal_select, taken on CPU.
        greedy_triton.supports = lambda sim: True
        return sttm.most_orthogonal_select(x, num, start)

    torch.manual_seed(0)
    # (samples, tokens, channels, picks): ViT-B's spatial (196 -> 147
    # candidates) and spatio-temporal (784 -> 588) stages, one token, all.
    for b, l, d, num in [(3, 50, 16, 30), (2, 196, 32, 147),
                         (1, 784, 64, 588), (4, 1, 8, 1), (2, 20, 4, 20)]:
        x = sttm.normalize(torch.randn(b, l, d))
        if l >= 20:
            x[:, 5:10] = x[:, :1]  # exact duplicates: argmin ties
        start = torch.randint(0, l, (b, ))
        ref, got = loop(x, num, start), kernel(x, num, start)
        assert got.dtype == torch.long and torch.equal(got, ref), (b, l)
    print('identical')
''')


def test_kernel_picks_what_the_loop_picks():
    # Triton comes with the pinned CUDA build of torch (setup.py), so this
    # runs wherever the project is installed as documented.
    assert greedy_triton.triton is not None, 'Triton is not installed'
    env = dict(os.environ, TRITON_INTERPRET='1', OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, '-c', SCRIPT],
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'identical' in proc.stdout


def test_cpu_tensors_use_the_loop():
    sim = torch.zeros(1, 4, 4)
    assert not greedy_triton.supports(sim)


def test_kernel_failure_falls_back_to_the_loop(monkeypatch):
    x = sttm.normalize(torch.randn(2, 30, 8))
    start = torch.zeros(2, dtype=torch.long)
    ref = sttm.most_orthogonal_select(x, 12, start)

    def broken(*args):
        raise RuntimeError('no compiler for this GPU')

    monkeypatch.setattr(greedy_triton, 'supports', lambda sim: True)
    monkeypatch.setattr(greedy_triton, 'greedy_select', broken)
    monkeypatch.setattr(greedy_triton, '_broken', False)
    with pytest.warns(UserWarning, match='no compiler for this GPU'):
        got = sttm.most_orthogonal_select(x, 12, start)
    assert torch.equal(got, ref)
    assert greedy_triton._broken
