# The synthetic motion dataset (tools/data/make_synthetic_videos.py): 32x32
# mp4 videos whose classes differ only in how one object moves, read with
# decord (PyAV, then OpenCV, where decord fails). Labels depend on direction,
# so there is no horizontal flip.
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
data_root = 'data/synthetic_motion'
ann_file_train = f'{data_root}/train_list_videos.txt'
ann_file_val = f'{data_root}/val_list_videos.txt'
ann_file_test = f'{data_root}/val_list_videos.txt'
num_classes = 10
# Frames are resized to `scale` and cropped to `crop_size`: a few pixels of
# random translation in training, three distinct crops at test time.
scale = 36
crop_size = 32

file_client_args = dict(io_backend='disk')

train_pipeline = [
    dict(
        type='DecodeWithFallback',
        decoders=decoders,
        sampler=dict(
            type='SampleFrames', clip_len=8, frame_interval=2, num_clips=1),
        timeout=decode_timeout,
        **file_client_args),
    dict(type='Resize', scale=(-1, scale)),
    # A translation only: scaling would change the speeds that some classes
    # are told apart by.
    dict(type='RandomCrop', size=crop_size),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(
        type='DecodeWithFallback',
        decoders=decoders,
        sampler=dict(
            type='SampleFrames',
            clip_len=8,
            frame_interval=2,
            num_clips=1,
            test_mode=True),
        timeout=decode_timeout,
        **file_client_args),
    dict(type='Resize', scale=(-1, scale)),
    dict(type='CenterCrop', crop_size=crop_size),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
# Multi-view testing: 1 clip x 3 crops, scores averaged by the head. The
# videos are square and ThreeCrop slides along the long side, so a centre
# crop first makes the frame `scale` wide and `crop_size` high: the three
# views are left, middle and right at the training scale.
test_pipeline = [
    dict(
        type='DecodeWithFallback',
        decoders=decoders,
        sampler=dict(
            type='SampleFrames',
            clip_len=8,
            frame_interval=2,
            num_clips=1,
            test_mode=True),
        timeout=decode_timeout,
        **file_client_args),
    dict(type='Resize', scale=(-1, scale)),
    dict(type='CenterCrop', crop_size=(scale, crop_size)),
    dict(type='ThreeCrop', crop_size=crop_size),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]

train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        on_bad_sample=on_bad_sample,
        ann_file=ann_file_train,
        data_prefix=dict(video=f'{data_root}/videos'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        on_bad_sample=on_bad_sample,
        strict_scoring=strict_scoring,
        ann_file=ann_file_val,
        data_prefix=dict(video=f'{data_root}/videos'),
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        on_bad_sample=on_bad_sample,
        strict_scoring=strict_scoring,
        ann_file=ann_file_test,
        data_prefix=dict(video=f'{data_root}/videos'),
        pipeline=test_pipeline,
        test_mode=True))

val_evaluator = dict(type='AccMetric')
test_evaluator = val_evaluator
