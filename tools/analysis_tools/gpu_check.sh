#!/usr/bin/env bash
# One-command GPU check (under 10 minutes on one GPU): CUDA correctness of
# every model family against CPU, the Triton greedy kernel against the torch
# loop, one epoch of sharded training (FSDP + bf16 + activation
# checkpointing, the zoo's strategy), and the bf16 speed table (eager and
# compiled) with merge shares.
# Writes work_dirs/gpu_check/report.md; pass --docs to write it under
# docs/results/gpu/ instead. Every option goes to gpu_check.py (--help).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec "${PYTHON:-python}" tools/analysis_tools/gpu_check.py "$@"
