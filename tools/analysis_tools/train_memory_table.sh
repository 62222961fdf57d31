#!/usr/bin/env bash
# The memory table of docs/scale.md: peak training memory per rank of
# VideoMAE ViT-B/16 and ViT-L/16 at 16 x 224 x 224, 2 clips per rank,
# unmerged, STTM and ToMe at about -33% GFLOPs and RLT on a static clip,
# each without and with activation checkpointing, on one process and under
# FSDP on 2 CPU ranks. ViT-B is the ViT-L configs at ViT-B's width and depth
# (STTM after blocks 6 and 9, ToMe after blocks 1-11 at ratio 0.068).
#   bash tools/analysis_tools/train_memory_table.sh OUT.jsonl [MODELS]
# MODELS: "base large" (default). Each row appends a JSON line to OUT.jsonl;
#   python tools/analysis_tools/train_memory.py --table OUT.jsonl
# prints the table.
set -euo pipefail
OUT=${1:?usage: train_memory_table.sh OUT.jsonl [MODELS]}
MODELS=${2:-base large}
PYTHON=${PYTHON:-python}
V=configs/videomae
K=p16_videomae-k400-pre_8xb2-16x4x1-35e_kinetics400-rgb.py
ST=spatiotemporal
for model in $MODELS; do
    if [ "$model" = base ]; then
        size=(model.backbone.embed_dims=768 model.backbone.depth=12
              model.backbone.num_heads=12 model.cls_head.in_channels=768)
        sttm=(model.backbone.merger.layers=[6,9])
        tome=(model.backbone.merger.layers=[1,2,3,4,5,6,7,8,9,10,11]
              "model.backbone.merger.stages=[$ST,$ST,$ST,$ST,$ST,$ST,$ST,$ST,$ST,$ST,$ST]"
              model.backbone.merger.ratio=0.068)
    else
        size=() sttm=() tome=()
    fi
    for cp in False True; do
        for ranks in 1 2; do
            run() {  # CONFIG CLIP OPTIONS...
                local config=$1 clip=$2
                shift 2
                $PYTHON tools/analysis_tools/train_memory.py "$config" \
                    --batch-size 2 --clip "$clip" --ranks "$ranks" \
                    --out "$OUT" --cfg-options "${size[@]}" \
                    model.backbone.with_cp=$cp "$@"
            }
            run $V/vit-large-$K random
            run $V/sttm_vit-large-$K random "${sttm[@]}"
            run $V/tome_vit-large-$K random "${tome[@]}"
            run $V/vit-large-$K static model.backbone.reducer.type=RLT \
                model.backbone.reducer.threshold=0.1
        done
    done
done
