"""tools/analysis_tools/train_memory.py: what a rank holds is counted from
its tensors (FSDP's shards are half the model on 2 ranks), the step's peak
from resident memory, and the table renders every row."""
import json
import os.path as osp
import subprocess
import sys

import pytest

#: It runs FSDP on 2 processes: `make test-fsdp` (and CI), not `make test`.
pytestmark = pytest.mark.fsdp
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO_ROOT, 'tools', 'analysis_tools', 'train_memory.py')
CONFIG = osp.join(
    REPO_ROOT, 'configs', 'synthetic',
    'sttm_vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py')
WIDTH = 64
OPTIONS = [
    f'model.backbone.embed_dims={WIDTH}', 'model.backbone.depth=4',
    'model.backbone.num_heads=2', f'model.cls_head.in_channels={WIDTH}',
    'model.cls_head.num_classes=2'
]


def _run(*args: str) -> str:
    proc = subprocess.run([sys.executable, TOOL, *args],
                          cwd=REPO_ROOT,
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return proc.stdout


def test_one_process_and_fsdp_ranks(tmp_path):
    out = tmp_path / 'rows.jsonl'
    for ranks in ('1', '2'):
        _run(CONFIG, '--batch-size', '2',
             '--shape', '3', '8', '32', '32', '--ranks', ranks, '--out',
             str(out), '--profile', '--cfg-options', *OPTIONS)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r['ranks'] for r in rows] == [1, 2, 2]
    single, *shards = rows
    # AdamW keeps two float32 moments per parameter; FSDP shards both (and
    # the parameters) across the ranks, and keeps the gradient shards.
    assert abs(single['optimizer_mib'] - 2 * single['params_mib']) < 1e-3
    for shard in shards:
        assert abs(shard['params_mib'] - single['params_mib'] / 2) < 0.01
        assert abs(shard['grads_mib'] - shard['params_mib']) < 1e-6
        assert abs(shard['optimizer_mib'] - single['optimizer_mib'] / 2) \
            < 0.02
    assert single['grads_mib'] == 0  # freed between steps (set_to_none)
    for row in rows:
        assert row['step_mib'] > 0 and row['profiler_step_mib'] > 0
        held = row['params_mib'] + row['grads_mib'] + row['buffers_mib'] \
            + row['optimizer_mib']
        assert abs(row['peak_mib'] - held - row['step_mib']) < 1e-6
    table = _run('--table', str(out))
    assert '| ViT (4 x 64) | STTM | no |' in table, table
