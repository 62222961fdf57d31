#!/usr/bin/env bash
# Distributed training with torchrun, as MMAction2's tools/dist_train.sh.
#   tools/dist_train.sh CONFIG NPROC [tools/train.py options...]
# Environment: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR
# (127.0.0.1), PYTHON (python). Works on CPU (gloo) and GPU (nccl).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/tools/launch.sh"
need_args 2 "CONFIG NPROC [train.py options...]" "$@"
CONFIG=$1
GPUS=$2
require_file config "$CONFIG"
torchrun_tool train "$CONFIG" "${@:3}"
