# Shared by tools/dist_train.sh, dist_test.sh, slurm_train.sh and
# slurm_test.sh; sourced, not run. The caller sets ROOT (the repository)
# and its launcher's variables (see each script's header).

# need_args MIN USAGE ARGS...: fewer than MIN arguments is the usage line
# and status 2.
need_args() {
    local min=$1 usage=$2
    shift 2
    if [ $# -lt "$min" ]; then
        echo "usage: $0 $usage" >&2
        exit 2
    fi
}

# require_file WHAT PATH: a missing local file (a URL passes) is one line
# and status 2 here, before torchrun starts or srun queues a job, as the
# Python tools do, instead of one traceback per process.
require_file() {
    if [[ "$2" != *://* && ! -f "$2" ]]; then
        echo "$(basename "$0"): error: $1 $2 does not exist" >&2
        exit 2
    fi
}

# torchrun_tool TOOL ARGS...: tools/TOOL.py under torch.distributed.run,
# GPUS processes on each of NNODES nodes (gloo on CPU, nccl on GPU).
torchrun_tool() {
    local tool=$1
    shift
    set -x
    PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
    "${PYTHON:-python}" -m torch.distributed.run --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --nproc_per_node="$GPUS" --master_port="${PORT:-29500}" \
        "$ROOT/tools/$tool.py" "$@" --launcher pytorch
}

# srun_tool TOOL ARGS...: tools/TOOL.py as GPUS Slurm tasks in PARTITION,
# GPUS_PER_NODE per node.
srun_tool() {
    local tool=$1
    shift
    export MASTER_PORT=${MASTER_PORT:-$((12000 + RANDOM % 20000))}
    set -x
    # SRUN_ARGS is split on purpose: it holds several srun options.
    # shellcheck disable=SC2086
    PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
    srun -p "$PARTITION" \
        --job-name="$JOB_NAME" \
        --gres=gpu:"${GPUS_PER_NODE:-8}" \
        --ntasks="${GPUS:-8}" \
        --ntasks-per-node="${GPUS_PER_NODE:-8}" \
        --cpus-per-task="${CPUS_PER_TASK:-5}" \
        --kill-on-bad-exit=1 \
        ${SRUN_ARGS:-} \
        "${PYTHON:-python}" -u "$ROOT/tools/$tool.py" "$@" --launcher=slurm
}
