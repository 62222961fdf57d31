# adamw_layer-decay_cosine_35e.py for 50 epochs, the length of VideoMAE's
# ViT-H Kinetics-400 fine-tuning script.
_base_ = ['./adamw_layer-decay_cosine_35e.py']

max_epochs = 50
warmup_epochs = 5

train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-3,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        eta_min=1e-6,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True)
]
