# The off-the-shelf frontier (regime c) on the VideoMAE-style ViT, as
# tools/analysis_tools/frontier.py reads it. Words, reasons and amendments:
# docs/results/frontier/videomae/PROTOCOL.md; the two change together, by
# dated amendments only.
#
# The trained models are the VideoMAE-style study's unmerged ViTs (phase 1,
# docs/results/videomae/: one per pre-training seed 0-9, fine-tuned 6
# epochs, commit 77146d5); checkpoint and data paths are relative to a
# worktree at that commit (`run --source WT`).

# Merges after blocks 1 and 2 (in each frame, then over the clip): the
# earliest two-stage schedule, so that one merge can reach -60% on four
# blocks. The bipartite mergers remove at most half of the tokens per step
# and merge after blocks 1, 2 and 3 (ToMe merges after every block).
one_shot = dict(layers=(1, 2), stages=('spatial', 'spatiotemporal'))
bipartite = dict(layers=(1, 2, 3), stages=('spatiotemporal', ) * 3)

protocol = dict(
    title='Off-the-shelf frontier, VideoMAE-style ViT (no CLS token)',
    out='docs/results/frontier/videomae',
    model_config='configs/synthetic/videomae_study/finetune/'
    'vit_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py',
    checkpoint='work_dirs/confirm/test/finetune/vit/seed{seed}/epoch_6.pth',
    data=dict(
        dev=('data/study/motion/val_list_videos.txt',
             'data/study/motion/videos'),
        test=('data/study/test/test_list_videos.txt',
              'data/study/test/videos'),
        shifted=('data/study/shifted/shifted_list_videos.txt',
                 'data/study/shifted/videos')),
    # In distribution (2000 held-out videos) and out of it (1000 videos of
    # the shifted scene: another background family, smaller and faster
    # objects, four distractors; fixed before any run of the earlier study).
    splits=('test', 'shifted'),
    seeds=tuple(range(10)),
    points=(0.9, 0.8, 0.7, 0.65, 0.6, 0.55, 0.5, 0.4),
    tolerance=0.02,
    shape=(1, 3, 8, 32, 32),
    reducers=dict(
        STTM=dict(merger=dict(type='STTM', fuse_init='identity',
                              **one_shot), max_ratio=0.95),
        ToMe=dict(
            merger=dict(type='ToMe', **bipartite), max_ratio=0.5,
            readings=dict(
                keys=dict(merger=dict(metric='keys')),
                keys_prop=dict(merger=dict(metric='keys'), prop_attn=True),
                tokens=dict(merger=dict(metric='tokens')),
                tokens_prop=dict(merger=dict(metric='tokens'),
                                 prop_attn=True))),
        EViT=dict(merger=dict(type='EViT', **one_shot), max_ratio=0.95),
        PiToMe=dict(
            merger=dict(type='PiToMe', **bipartite), max_ratio=0.5,
            readings=dict(plain=dict(), prop=dict(prop_attn=True))),
        VidTLDR=dict(
            merger=dict(type='VidTLDR', **bipartite), max_ratio=0.5,
            readings=dict(plain=dict(), prop=dict(prop_attn=True))),
        UniformPool=dict(merger=dict(type='UniformPool', **one_shot),
                         max_ratio=0.95),
        RandomDrop=dict(merger=dict(type='RandomDrop', **one_shot),
                        max_ratio=0.95)),
    primary='STTM',
    floor='RandomDrop',
    alpha=0.05)
