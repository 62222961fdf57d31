#!/usr/bin/env bash
# Training on a Slurm cluster, as MMAction2's tools/slurm_train.sh.
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG [tools/train.py options...]
# Environment: GPUS (8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS,
# PYTHON (python).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/tools/launch.sh"
need_args 3 "PARTITION JOB_NAME CONFIG [train.py options...]" "$@"
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
require_file config "$CONFIG"
srun_tool train "$CONFIG" "${@:4}"
