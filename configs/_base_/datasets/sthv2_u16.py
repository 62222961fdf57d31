# Something-Something V2 in MMAction2's video-list format (`path label` per
# line; see docs/data_preparation.md), decoded with decord (the official
# .webm files; PyAV, then OpenCV, where decord fails). 16 frames sampled
# uniformly over the whole video (one random frame per segment when
# training, fixed positions when testing), as VideoMAE fine-tunes on SSv2
# (its segment-based sampling, 16 frames) and MMAction2's SSv2 recipes
# sample.
#
# Train: a random-area crop of the short-side-256 frames resized to 224, and
# NO horizontal flip: SSv2 labels name directions ("pushing something from
# left to right"), so flipping would swap classes. Test: 2 clips x 3 crops
# at 224, VideoMAE's SSv2 test (16x2x3; UniformSample's test mode takes the
# i-th clip at the i/3 point of every segment). GFLOPs in the zoo tables
# are per view.
# MMAction2's VideoDataset that survives unreadable videos: in training a bad
# sample is replaced by another one (logged with its file, counted per
# epoch by BadSampleHook), in testing it is listed and left out, and the
# metrics say how many videos were scored (mmaction_sttm/datasets/robust.py).
dataset_type = 'RobustVideoDataset'
on_bad_sample = 'replace'
# The pipelines open, sample and decode each video with DecodeWithFallback
# (mmaction_sttm/datasets/transforms.py) in place of MMAction2's DecordInit,
# sampler and DecordDecode: a video that decord cannot read is decoded
# again, with the same frame indices, by PyAV, then OpenCV; it is bad only
# when all three fail. Each decoder gets decode_timeout seconds per video (a
# file that hangs one is given to the next). strict_scoring=True (or
# tools/test.py --strict-scoring) makes any video that cannot be scored an
# error listing them, for benchmark runs that must score every video.
decoders = ['decord', 'pyav', 'opencv']
decode_timeout = 60
strict_scoring = False
data_root = 'data/sthv2/videos'
data_root_val = 'data/sthv2/videos'
ann_file_train = 'data/sthv2/sthv2_train_list_videos.txt'
ann_file_val = 'data/sthv2/sthv2_val_list_videos.txt'
ann_file_test = 'data/sthv2/sthv2_val_list_videos.txt'

file_client_args = dict(io_backend='disk')

train_pipeline = [
    dict(
        type='DecodeWithFallback',
        decoders=decoders,
        sampler=dict(type='UniformSample', clip_len=16),
        timeout=decode_timeout,
        **file_client_args),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomResizedCrop'),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(
        type='DecodeWithFallback',
        decoders=decoders,
        sampler=dict(type='UniformSample', clip_len=16, test_mode=True),
        timeout=decode_timeout,
        **file_client_args),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(
        type='DecodeWithFallback',
        decoders=decoders,
        sampler=dict(
            type='UniformSample', clip_len=16, num_clips=2, test_mode=True),
        timeout=decode_timeout,
        **file_client_args),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='ThreeCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]

# 2 clips of 16 frames per GPU: VideoMAE's ViT-L fine-tuning batch
# (--batch_size 2).
train_dataloader = dict(
    batch_size=2,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        on_bad_sample=on_bad_sample,
        ann_file=ann_file_train,
        data_prefix=dict(video=data_root),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        on_bad_sample=on_bad_sample,
        strict_scoring=strict_scoring,
        ann_file=ann_file_val,
        data_prefix=dict(video=data_root_val),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = dict(
    batch_size=1,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        on_bad_sample=on_bad_sample,
        strict_scoring=strict_scoring,
        ann_file=ann_file_test,
        data_prefix=dict(video=data_root_val),
        pipeline=test_pipeline,
        test_mode=True))

val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator
