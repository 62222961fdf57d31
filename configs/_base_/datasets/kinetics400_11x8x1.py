# kinetics400_8x8x1.py with 11-frame clips (same frame interval), for the
# paper's same-compute STTM models (Table 6). Only the samplers change; the
# pipelines are lists, so they are restated whole.
_base_ = ['./kinetics400_8x8x1.py']

file_client_args = dict(io_backend='disk')
# The base's decoder fallback (a config does not see its base's variables).
decoders = ['decord', 'pyav', 'opencv']
decode_timeout = 60
clip_len = 11

# One decode step (the base's fallback, timeout and sampler, at
# clip_len frames); the test-mode sampler for validation and test.
decode = dict(
    type='DecodeWithFallback',
    decoders=decoders,
    timeout=decode_timeout,
    **file_client_args)
sampler = dict(
    type='SampleFrames', clip_len=clip_len, frame_interval=8, num_clips=1)

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
    dict(decode, sampler=dict(sampler, test_mode=True)),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='ThreeCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]

train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
