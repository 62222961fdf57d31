# Phase 3 of the VideoMAE-style study (amendment of 2026-12-05 in
# docs/results/videomae/PROTOCOL.md): phase 1's variants, recipe and
# pre-training seeds, fine-tuned and tested on shifted scenes (the
# tester's design), as tools/analysis/confirm.py reads it
# (`--config-dir configs/synthetic/videomae_shifted_study`).
protocol = dict(
    title='VideoMAE-style study, phase 3: fine-tuned on shifted scenes',
    out='docs/results/videomae/shifted_finetune',
    data_root='data/study_shifted_scene',
    # mmaction_sttm.study.data.SHIFT at 56 x 56 pixels (the configs'
    # pipelines resize to 32), train and dev from a generator seed of
    # their own; the test split from the study's test seed.
    scene=dict(resolution=56, background='checker', object_scale=0.75,
               speed_scale=1.25, num_distractors=4, seed=20261206),
    per_class=dict(train=200, dev=20),
    baseline='vit',
    primary='sttm-orthogonal-r0.7',
    variants=[
        'vit', 'sttm-orthogonal-r0.7', 'sttm-identity-r0.7',
        'tome-tokens-r0.28', 'tome-r0.28', 'evit-r0.64'
    ],
    comparisons=[
        dict(primary='sttm-orthogonal-r0.7',
             others=['vit', 'tome-tokens-r0.28', 'tome-r0.28',
                     'evit-r0.64']),
        dict(primary='sttm-identity-r0.7',
             others=['vit', 'tome-tokens-r0.28', 'tome-r0.28',
                     'evit-r0.64']),
    ],
    dev_seeds=[0],
    seeds=[0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    pretrain_seed=None,
    test_per_class=100,
    train_subset=200,
    collapse_margin=5.0,
    noninferiority=2.0,
    margin=2.0,
    alpha=0.05,
    half_width=1.5)
