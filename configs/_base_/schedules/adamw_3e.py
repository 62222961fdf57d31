# A short AdamW schedule for the synthetic motion dataset (4000 training
# videos, 250 iterations per epoch at 2 x 8): linear warm-up over the first
# 0.4 epoch, then linear decay to zero, stepped every iteration.
_base_ = ['./adamw_20e.py']

max_epochs = 3
warmup_epochs = 0.4  # epochs may be fractional: converted to iterations

train_cfg = dict(max_epochs=max_epochs)

param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='LinearLR',
        start_factor=1.0,
        end_factor=0.0,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True)
]
