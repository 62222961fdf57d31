#!/usr/bin/env bash
# Distributed testing with torchrun, as MMAction2's tools/dist_test.sh.
#   tools/dist_test.sh CONFIG CHECKPOINT NPROC [tools/test.py options...]
# Environment: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR
# (127.0.0.1), PYTHON (python). Works on CPU (gloo) and GPU (nccl).
set -euo pipefail

if [ $# -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT NPROC [test.py options...]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# A missing file is one line and status 2 here, before torchrun starts
# (as the Python tools do), instead of one traceback per process.
if [ ! -f "$CONFIG" ]; then
    echo "$(basename "$0"): error: config $CONFIG does not exist" >&2
    exit 2
fi
if [[ "$CHECKPOINT" != *://* && ! -f "$CHECKPOINT" ]]; then
    echo "$(basename "$0"): error: checkpoint $CHECKPOINT does not exist" >&2
    exit 2
fi

set -x
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
"$PYTHON" -m torch.distributed.run --nnodes="$NNODES" --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$ROOT/tools/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
