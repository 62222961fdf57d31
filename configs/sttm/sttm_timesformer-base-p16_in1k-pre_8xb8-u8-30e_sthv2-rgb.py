# TimeSformer-B/16 (divided space-time) + STTM (merges after blocks 6 and 9,
# ratio 0.5) on Something-Something V2, 8 frames (paper Table 6).
_base_ = [
    '../_base_/models/timesformer-base-p16_sttm.py',
    '../_base_/datasets/sthv2_u8.py',
    '../_base_/schedules/adamw_linear_30e.py',
    '../_base_/default_runtime.py'
]

model = dict(cls_head=dict(num_classes=174))
