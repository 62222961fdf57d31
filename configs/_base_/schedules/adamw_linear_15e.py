# adamw_linear_30e.py over 15 epochs: the paper's ablations on SSv2 ("fine-
# tuned for 15 epochs", Table 3). Warm-up shortened in proportion.
_base_ = ['./adamw_linear_30e.py']

max_epochs = 15
warmup_epochs = 1

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
