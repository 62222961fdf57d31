# STTM in the tiny TimeSformer: divided attention up to block 2, then a
# spatial merge; blocks 3-4 attend globally with their spatial weights.
_base_ = ['./timesformer-tiny_scratch_2xb8-8x2x1-6e_synthetic-motion-rgb.py']

model = dict(
    backbone=dict(
        type='MergingTimeSformer',
        merger=dict(
            type='STTM',
            layers=(2, 3),
            stages=('spatial', 'spatiotemporal'),
            ratio=0.5)))
