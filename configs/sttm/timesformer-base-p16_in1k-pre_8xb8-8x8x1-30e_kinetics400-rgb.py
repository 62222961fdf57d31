# The TimeSformer-B/16 (divided space-time) baseline on Kinetics-400, 8
# frames (paper Table 6).
_base_ = [
    '../_base_/models/timesformer-base-p16.py',
    '../_base_/datasets/kinetics400_8x8x1.py',
    '../_base_/schedules/adamw_linear_30e.py',
    '../_base_/default_runtime.py'
]
