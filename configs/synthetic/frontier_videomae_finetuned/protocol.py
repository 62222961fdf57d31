# The fine-tuned frontier (regime b) on the VideoMAE-style ViT, as
# tools/analysis_tools/frontier.py reads it. Words, reasons and amendments:
# docs/results/frontier/videomae_finetuned/PROTOCOL.md; the two change
# together, by dated amendments only.
#
# Every point is a fine-tuning run: the pre-trained backbone of the
# VideoMAE-style study (one per pre-training seed, commit 77146d5), the
# reducer inserted at the plan's ratio, the whole model fine-tuned 6 epochs
# on the motion task with the study's recipe. Checkpoint and data paths are
# relative to a worktree at 77146d5 (`run --source WT`).
_base_ = ['../frontier_videomae/protocol.py']

# The off-the-shelf frontier's schedules (that file says why), so that the
# two frontiers differ in training only.
one_shot = dict(layers=(1, 2), stages=('spatial', 'spatiotemporal'))
bipartite = dict(layers=(1, 2, 3), stages=('spatiotemporal', ) * 3)

protocol = dict(
    title='Fine-tuned frontier, VideoMAE-style ViT (no CLS token)',
    out='docs/results/frontier/videomae_finetuned',
    model_config='configs/synthetic/videomae_study/finetune/'
    'vit_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py',
    checkpoint=None,
    # Three pre-training seeds (backbones 0-2), each fine-tuned with two
    # seeds: run seed s fine-tunes the backbone of pre-training seed
    # backbones[i] (seeds 0-2: the study's own seeds; 100-102: new ones).
    seeds=(0, 1, 2, 100, 101, 102),
    finetune=dict(
        pretrained='work_dirs/confirm/test/pretrain/vit/seed{backbone}/'
        'epoch_10.pth',
        backbones=(0, 1, 2, 0, 1, 2),
        train=('data/study/motion/train_list_videos.txt',
               'data/study/motion/videos'),
        train_subset=('data/study/motion/train_subset_list_videos.txt',
                      'data/study/motion/videos'),
        # The deepest point is chosen on dev, on backbones the held-out runs
        # do not use: the first candidate at which random dropping loses at
        # least 3 points (mean over the dev runs), else the deepest.
        dev_seeds=(3, 4),
        dev_backbones=(3, 4),
        deep_points=(0.4, ),
        floor_loss=3.0,
        work_dir='work_dirs/frontier_finetuned'),
    # -33% (the confirmatory point) and -50%; the deepest point is added
    # from the dev runs.
    points=(0.67, 0.5),
    # One reading per reducer (none is chosen here): STTM's orthogonal
    # fusion init, the zoo's and the one that won the VideoMAE-style study's
    # regime (b); ToMe by tokens with proportional attention, PiToMe with
    # it and vid-TLDR without it, the off-the-shelf frontier's dev choices.
    # PiToMe and vid-TLDR are the two best others of the off-the-shelf
    # frontier (docs/results/frontier/videomae/test.md).
    reducers=dict(
        _delete_=True,
        STTM=dict(
            merger=dict(type='STTM', fuse_init='orthogonal', **one_shot),
            max_ratio=0.95),
        ToMe=dict(
            merger=dict(type='ToMe', metric='tokens', **bipartite),
            max_ratio=0.5,
            readings=dict(tokens_prop=dict(prop_attn=True))),
        EViT=dict(merger=dict(type='EViT', **one_shot), max_ratio=0.95),
        PiToMe=dict(
            merger=dict(type='PiToMe', **bipartite),
            max_ratio=0.5,
            readings=dict(prop=dict(prop_attn=True))),
        VidTLDR=dict(
            merger=dict(type='VidTLDR', **bipartite),
            max_ratio=0.5,
            readings=dict(plain=dict())),
        RandomDrop=dict(
            merger=dict(type='RandomDrop', **one_shot), max_ratio=0.95)))
