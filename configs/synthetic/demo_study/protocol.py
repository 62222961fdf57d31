# The demo's recipe from scratch, scored on the held-out test split: the
# plan tools/analysis_tools/confirm.py reads (`--config-dir
# configs/synthetic/demo_study`). The words and the amendments are in
# docs/results/confirm/PROTOCOL.md ("Secondary: the demo from scratch");
# this file and that section change together, by dated amendments only.
protocol = dict(
    title='The demo from scratch',
    out='docs/results/confirm/demo',
    regime='scratch',
    # The demo's data (tools/data/make_synthetic_videos.py's default: 500
    # training and 25 dev videos per class, generator seed 0); the held-out
    # test split is the confirmatory study's (200 per class, its own seed).
    data_root='data/demo_study',
    per_class=dict(train=500, dev=25),
    baseline='vit',
    primary='sttm-r0.5',
    peers=['tome-r0.18'],
    variants=['vit', 'sttm-r0.5', 'tome-r0.18'],
    dev_seeds=[],
    seeds=[0, 1, 2, 3, 4],
    test_per_class=200,
    train_subset=250,
    margin=2.0,
    alpha=0.05,
    half_width=1.5)
