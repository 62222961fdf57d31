# The confirmatory study's plan, as tools/analysis_tools/confirm.py reads it. The
# words, the reasons and the amendments are in
# docs/results/confirm/PROTOCOL.md; this file and that one change together,
# by dated amendments only.
protocol = dict(
    # The unmerged model, the merger under test (frozen reading), and the
    # peers at the GFLOPs of the merger under test (within 2%).
    baseline='vit',
    primary='sttm-r0.7',
    peers=['evit-r0.63', 'random-drop-r0.59'],
    # Peers with several readings: the one with the highest mean dev top-1
    # over `dev_seeds` is compared (ties: the first listed).
    peer_choices=dict(ToMe=[
        'tome-keys-r0.28', 'tome-keys-prop-r0.28', 'tome-tokens-r0.28',
        'tome-tokens-prop-r0.28'
    ]),
    dev_seeds=[0, 1, 2],
    # Confirmatory seeds; every seed fine-tunes from the backbone
    # pre-trained with `pretrain_seed`.
    seeds=list(range(12)),
    pretrain_seed=0,
    # Held-out test videos per class (10 classes), generator seed of its own.
    test_per_class=200,
    train_subset=200,
    # Equivalence margin (points of top-1), family-wise level, and the
    # half-width the seeds are sized for.
    margin=2.0,
    alpha=0.05,
    half_width=1.5)
