# sthv2_u8.py with 16 frames sampled uniformly over the whole video (one
# random frame per segment when training, fixed positions when testing), as
# VideoMAE fine-tunes on SSv2 (its segment-based sampling, 16 frames). Test:
# 2 clips x 3 crops at 224, VideoMAE's SSv2 test (16x2x3; UniformSample's
# test mode takes the i-th clip at the i/3 point of every segment). GFLOPs
# in the zoo tables are per view. Only the samplers and batch sizes change;
# the pipelines are lists, so they are restated whole (still no flip: SSv2
# labels name directions).
_base_ = ['./sthv2_u8.py']

file_client_args = dict(io_backend='disk')
# The base's decoder fallback (a config does not see its base's variables).
decoders = ['decord', 'pyav', 'opencv']
decode_timeout = 60

# One decode step (the base's fallback and timeout); the 16-frame sampler,
# in test mode for validation and test.
decode = dict(
    type='DecodeWithFallback',
    decoders=decoders,
    timeout=decode_timeout,
    **file_client_args)
sampler = dict(type='UniformSample', clip_len=16)

train_pipeline = [
    dict(decode, sampler=sampler),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomResizedCrop'),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
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
    dict(decode, sampler=dict(sampler, num_clips=2, test_mode=True)),
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
