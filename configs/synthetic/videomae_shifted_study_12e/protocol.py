# Phase 4 of the VideoMAE-style study (amendment 5 of 2026-12-05 in
# docs/results/videomae/PROTOCOL.md): phase 3's design (fine-tuned and
# tested on shifted scenes, the same data and pre-training seeds) with the
# fine-tune twice as long, 12 epochs, for three of its variants, as
# tools/analysis_tools/confirm.py reads it (`--config-dir
# configs/synthetic/videomae_shifted_study_12e`). Only what differs from
# phase 3's plan is written here.
_base_ = ['../videomae_shifted_study/protocol.py']

protocol = dict(
    title='VideoMAE-style study, phase 4: fine-tuned 12 epochs on shifted '
    'scenes',
    out='docs/results/videomae/shifted_finetune_12e',
    variants=['vit', 'sttm-orthogonal-r0.7', 'tome-tokens-r0.28'],
    comparisons=[
        dict(primary='sttm-orthogonal-r0.7',
             others=['vit', 'tome-tokens-r0.28']),
    ])
