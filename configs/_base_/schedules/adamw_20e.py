# AdamW, linear warm-up over the first epochs then linear decay to zero,
# stepped every iteration. Epoch-based: 20 epochs, validation every epoch.
max_epochs = 20
warmup_epochs = 2

train_cfg = dict(
    type='EpochBasedTrainLoop',
    max_epochs=max_epochs,
    val_begin=1,
    val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    optimizer=dict(
        type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    # No decay on position / time embeddings, class tokens and norms.
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={
                           '.cls_token': dict(decay_mult=0.0),
                           '.pos_embed': dict(decay_mult=0.0),
                           '.time_embed': dict(decay_mult=0.0)
                       }),
    clip_grad=dict(max_norm=5, norm_type=2))

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

# lr above is for 2 processes x 8 videos; --auto-scale-lr rescales it.
auto_scale_lr = dict(enable=False, base_batch_size=16)
