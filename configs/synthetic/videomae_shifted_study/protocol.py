# Phase 3 of the VideoMAE-style study (amendment of 2026-12-05 in
# docs/results/videomae/PROTOCOL.md): phase 1's variants, comparisons,
# tests, recipe and pre-training seeds, fine-tuned and tested on shifted
# scenes (the tester's design), as tools/analysis_tools/confirm.py reads it
# (`--config-dir configs/synthetic/videomae_shifted_study`). Only what
# differs from phase 1's plan is written here.
_base_ = ['../videomae_study/protocol.py']

protocol = dict(
    title='VideoMAE-style study, phase 3: fine-tuned on shifted scenes',
    out='docs/results/videomae/shifted_finetune',
    data_root='data/study_shifted_scene',
    # SHIFT (tools/analysis_tools/sttm_study/data.py) at 56 x 56 pixels
    # (the configs' pipelines resize to 32), train and dev from a generator
    # seed of their own; the test split from the study's test seed.
    scene=dict(resolution=56, background='checker', object_scale=0.75,
               speed_scale=1.25, num_distractors=4, seed=20261206),
    per_class=dict(train=200, dev=20),
    test_per_class=100,
    # Its test split is the shifted scene itself; no ablations.
    shifted_per_class=0,
    ablations=[])
