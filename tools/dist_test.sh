#!/usr/bin/env bash
# Distributed testing with torchrun, as MMAction2's tools/dist_test.sh.
#   tools/dist_test.sh CONFIG CHECKPOINT NPROC [tools/test.py options...]
# Environment: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR
# (127.0.0.1), PYTHON (python). Works on CPU (gloo) and GPU (nccl).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/tools/launch.sh"
need_args 3 "CONFIG CHECKPOINT NPROC [test.py options...]" "$@"
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
require_file config "$CONFIG"
require_file checkpoint "$CHECKPOINT"
torchrun_tool test "$CONFIG" "$CHECKPOINT" "${@:4}"
