# A short AdamW schedule for the synthetic motion dataset (5000 training
# videos, 313 iterations per epoch at 2 x 8): linear warm-up over the first
# 100 iterations, then linear decay to zero, stepped every iteration.
_base_ = ['./adamw_20e.py']

max_epochs = 3

train_cfg = dict(max_epochs=max_epochs)

# Warm-up over the first 100 iterations (0.3 epoch of the default data),
# counted in iterations so that it never rounds to zero on tiny datasets;
# linear decay to zero over the whole run, stepped every iteration. The two
# overlap: MMEngine multiplies their factors.
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        by_epoch=False,
        begin=0,
        end=100),
    dict(
        type='LinearLR',
        start_factor=1.0,
        end_factor=0.0,
        by_epoch=True,
        begin=0,
        end=max_epochs,
        convert_to_iter_based=True)
]
