# adamw_layer-decay_cosine_35e.py for 30 epochs, the length of VideoMAE's
# released SSv2 fine-tuning script (ViT-B, --epochs 30; VideoMAE released
# none for ViT-L or ViT-H on SSv2).
_base_ = ['./adamw_layer-decay_cosine_35e.py']

max_epochs = 30
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
