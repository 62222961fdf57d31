# The RLT study's plan, as tools/analysis_tools/confirm.py reads it
# (`--config-dir configs/synthetic/rlt_study`). The words, the reasons and the
# amendments are in docs/results/rlt/study/PROTOCOL.md; this file and that one
# change together, by dated amendments only.
protocol = dict(
    title='RLT study',
    out='docs/results/rlt/study',
    # The static-camera variant of the study's motion task (same scenes,
    # objects and labels; the background stands still).
    data_root='data/study_static',
    camera='static',
    baseline='vit',
    primary='rlt-t0.3',
    # Two GFLOPs points, each compared paired by seed (Holm within each).
    comparisons=[
        dict(primary='rlt-t0.3',
             others=['vit', 'sttm-r0.55', 'tome-tokens-r0.22']),
        dict(primary='rlt-t0.2-sttm-r0.45',
             others=['vit', 'sttm-r0.7', 'tome-tokens-r0.28']),
    ],
    # ToMe's two variants: amendment of 2026-12-04 (PROTOCOL.md).
    variants=[
        'vit', 'rlt-t0.3', 'sttm-r0.55', 'tome-tokens-r0.22',
        'rlt-t0.2-sttm-r0.45', 'sttm-r0.7', 'tome-tokens-r0.28'
    ],
    dev_seeds=[0],
    seeds=[0, 1, 2, 3, 4],
    pretrain_seed=0,
    test_per_class=200,
    train_subset=200,
    margin=2.0,
    alpha=0.05,
    half_width=1.5)
