# Reference of the ablations (paper Tables 1-5): TimeSformer-B/16 + STTM,
# two-stage merging after blocks 6 and 9, ratio 0.5, meta filter and motion
# features on, fine-tuned for 15 epochs on SSv2 (Table 3's caption). Every
# other config in this folder changes one setting of it (or of the ViT
# references, for Table 2).
_base_ = [
    '../../_base_/models/timesformer-base-p16_sttm.py',
    '../../_base_/datasets/sthv2_u8.py',
    '../../_base_/schedules/adamw_linear_15e.py',
    '../../_base_/default_runtime.py'
]

model = dict(cls_head=dict(num_classes=174))
