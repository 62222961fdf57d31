#!/usr/bin/env bash
# Testing on a Slurm cluster, as MMAction2's tools/slurm_test.sh.
#   tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py options...]
# Environment: GPUS (8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS,
# PYTHON (python).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/tools/launch.sh"
need_args 4 "PARTITION JOB_NAME CONFIG CHECKPOINT [test.py options...]" "$@"
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
require_file config "$CONFIG"
require_file checkpoint "$CHECKPOINT"
srun_tool test "$CONFIG" "$CHECKPOINT" "${@:5}"
