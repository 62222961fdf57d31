# kinetics400_8x8x1.py with 16 frames, one every 4th (2.56 s at 25 fps): the
# 16x4x1 of MMAction2's VideoMAE configs and VideoMAE's fine-tuning
# (--num_frames 16 --sampling_rate 4). Test: 5 clips x 3 crops at 224, as
# VideoMAE and MMAction2's VideoMAE configs test (VideoMAE's 16x5x3); the
# head averages the 15 views' scores. GFLOPs in the zoo tables are per view.
# Only the samplers and batch sizes change; the pipelines are lists, so they
# are restated whole.
_base_ = ['./kinetics400_8x8x1.py']

file_client_args = dict(io_backend='disk')
# The base's decoder fallback (a config does not see its base's variables).
decoders = ['decord', 'pyav', 'opencv']
decode_timeout = 60

# One decode step (the base's fallback and timeout); the 16x4 sampler, in
# test mode for validation and test.
decode = dict(
    type='DecodeWithFallback',
    decoders=decoders,
    timeout=decode_timeout,
    **file_client_args)
sampler = dict(type='SampleFrames', clip_len=16, frame_interval=4, num_clips=1)

train_pipeline = [
    dict(decode, sampler=sampler),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomResizedCrop'),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(decode, sampler=dict(sampler, test_mode=True)),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(decode, sampler=dict(sampler, num_clips=5, test_mode=True)),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='ThreeCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]

# 2 clips of 16 frames per GPU: VideoMAE's ViT-L fine-tuning batch
# (--batch_size 2).
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(batch_size=2, dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
