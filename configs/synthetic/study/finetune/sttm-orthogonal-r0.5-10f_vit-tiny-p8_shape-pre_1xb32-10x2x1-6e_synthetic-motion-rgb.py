# (e) Paper Table 7: STTM given 10 frames instead of 8 (ratio 0.5), so that
# its GFLOPs (0.0332) are the 8-frame baseline's (0.0341, -2.4%).
_base_ = ['../study_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        num_frames=10,
        merger=dict(
            type='STTM',
            layers=(2, 3),
            stages=('spatial', 'spatiotemporal'),
            ratio=0.5,
            fuse_init='orthogonal')))

sample = dict(type='SampleFrames', clip_len=10, frame_interval=2,
              num_clips=1)
# The base's decoder fallback (a config does not see its base's variables).
decode = dict(
    type='DecodeWithFallback',
    decoders=['decord', 'pyav', 'opencv'],
    timeout=60)
train_pipeline = [
    dict(decode, sampler=sample),
    dict(type='Resize', scale=(-1, 32)),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
val_pipeline = [
    dict(decode, sampler=dict(sample, test_mode=True)),
    dict(type='Resize', scale=(-1, 32)),
    dict(type='CenterCrop', crop_size=32),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
test_pipeline = [
    dict(decode, sampler=dict(sample, test_mode=True)),
    dict(type='Resize', scale=(-1, 32)),
    dict(type='ThreeCrop', crop_size=32),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackActionInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))

study = dict(
    name='sttm-orthogonal-r0.5-10f',
    note='STTM, ratio 0.5, 10 frames',
    curve='STTM more frames')
