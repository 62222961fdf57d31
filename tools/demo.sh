#!/usr/bin/env bash
# `make demo`: the whole workflow on the synthetic motion dataset, on CPU.
#
#   1. generate the dataset (skipped when it already exists with this spec),
#   2. for every config: train with tools/dist_train.sh on NPROC processes,
#      test its last checkpoint with tools/dist_test.sh (1 clip x 3 crops),
#      count GFLOPs per view with tools/analysis_tools/get_flops.py,
#   3. print a summary table (also written to $WORK_DIR/summary.md).
#
# Environment (defaults in brackets): CONFIGS [the baselines below], NPROC
# [2], DATA [data/synthetic_motion], WORK_DIR [work_dirs/demo], SEED [0],
# PYTHON [python], PORT [a free one].
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# The ViT baseline and the same ViT with STTM, side by side.
DEFAULT_CONFIGS=(
    configs/synthetic/vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py
    configs/synthetic/sttm_vit-tiny_scratch_2xb8-8x2x1-3e_synthetic-motion-rgb.py
)
read -r -a CONFIG_LIST <<< "${CONFIGS:-${DEFAULT_CONFIGS[*]}}"
NPROC=${NPROC:-2}
DATA=${DATA:-data/synthetic_motion}
WORK_DIR=${WORK_DIR:-work_dirs/demo}
SEED=${SEED:-0}
PYTHON=${PYTHON:-python}
export PYTHON
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# A free rendezvous port, so that the demo does not collide with another
# torchrun on this machine (the scripts' default is MMAction2's 29500).
export PORT=${PORT:-$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}

# The data paths of the configs point at data/synthetic_motion; DATA may
# move it.
data_options=()
for pair in train:train val:val test:val; do
    loader=${pair%%:*}
    split=${pair##*:}
    data_options+=("${loader}_dataloader.dataset.ann_file=$DATA/${split}_list_videos.txt"
                   "${loader}_dataloader.dataset.data_prefix.video=$DATA/videos")
done

echo "== 1. Dataset: $DATA"
"$PYTHON" tools/data/make_synthetic_videos.py "$DATA"

mkdir -p "$WORK_DIR"
for config in "${CONFIG_LIST[@]}"; do
    name=$(basename "$config" .py)
    work="$WORK_DIR/$name"
    mkdir -p "$work"
    echo "== 2. $name"

    echo "-- train ($NPROC processes), log: $work/train.log"
    start=$(date +%s)
    if ! bash tools/dist_train.sh "$config" "$NPROC" --work-dir "$work" \
            --seed "$SEED" --cfg-options "${data_options[@]}" > "$work/train.log" 2>&1; then
        tail -n 40 "$work/train.log"
        echo "training $name failed, see $work/train.log" >&2
        exit 1
    fi
    echo $(( $(date +%s) - start )) > "$work/train_seconds.txt"
    grep -E 'Epoch\(val\)' "$work/train.log" | tail -n 3 | sed 's/^.*Epoch/   Epoch/'

    # The last checkpoint, not the best: val is also the test split here.
    checkpoint=$(cat "$work/last_checkpoint")
    echo "-- test $checkpoint (1 clip x 3 crops), log: $work/test.log"
    if ! bash tools/dist_test.sh "$config" "$checkpoint" "$NPROC" \
            --work-dir "$work/test" --cfg-options "${data_options[@]}" > "$work/test.log" 2>&1; then
        tail -n 40 "$work/test.log"
        echo "testing $name failed, see $work/test.log" >&2
        exit 1
    fi

    # GFLOPs of one view (its shape read from the test pipeline); the test
    # averages 3 of them. --json prints one JSON line last.
    "$PYTHON" tools/analysis_tools/get_flops.py "$config" --json 2>/dev/null \
        | tail -n 1 > "$work/flops.json"
done

echo "== 3. Summary"
"$PYTHON" - "$WORK_DIR" "${CONFIG_LIST[@]}" <<'EOF'
import json
import os.path as osp
import sys

work_dir, configs = sys.argv[1], sys.argv[2:]
rows = ['| config | top-1 | top-5 | GFLOPs/view | GFLOPs vs. first '
        '| views | params (M) | train (s) |',
        '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |']
first = None
for config in configs:
    work = osp.join(work_dir, osp.splitext(osp.basename(config))[0])
    with open(osp.join(work, 'test', 'test_metrics.json')) as f:
        metrics = json.load(f)
    with open(osp.join(work, 'flops.json')) as f:
        flops = json.load(f)
    with open(osp.join(work, 'train_seconds.txt')) as f:
        seconds = f.read().strip()
    first = first or flops['gflops']
    # 4 significant digits: the tiny models' GFLOPs are below 0.1, and
    # rounding to a fixed number of decimals would distort their ratio.
    rows.append(f'| {osp.basename(config)} | {100 * metrics["acc/top1"]:.1f} '
                f'| {100 * metrics["acc/top5"]:.1f} | {flops["gflops"]:.4g} '
                f'| {flops["gflops"] / first:.3f} | {flops["views"]} '
                f'| {flops["params_m"]:.3f} | {seconds} |')
table = '\n'.join(rows)
print(table)
print('(top-1/top-5 in %, 1 clip x 3 crops; chance top-1 is 100 / classes)')
with open(osp.join(work_dir, 'summary.md'), 'w') as f:
    f.write(table + '\n')
EOF
