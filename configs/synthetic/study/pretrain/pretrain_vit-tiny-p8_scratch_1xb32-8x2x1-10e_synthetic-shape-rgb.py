# (a) Pre-training of tools/analysis_tools/study.py, the analogue of ImageNet-1K:
# the study's ViT learns a frame-level task on still scenes of the same
# renderer (task='shape': the marked object's shape x quadrant, 12 classes;
# the background still drifts). The fine-tune configs load its backbone.
_base_ = ['../study_vit-tiny-p8_scratch_1xb32-8x2x1-12e_synthetic-motion-rgb.py']

data_root = 'data/study/shape'
num_classes = 12
model = dict(cls_head=dict(num_classes=num_classes))

max_epochs = 10
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True,
         begin=1, end=max_epochs, convert_to_iter_based=True)
]
default_hooks = dict(
    checkpoint=dict(interval=max_epochs, save_best=None, max_keep_ckpts=1))
train_dataloader = dict(dataset=dict(
    ann_file=f'{data_root}/train_list_videos.txt',
    data_prefix=dict(video=f'{data_root}/videos')))
val_dataloader = dict(dataset=dict(
    ann_file=f'{data_root}/val_list_videos.txt',
    data_prefix=dict(video=f'{data_root}/videos')))
test_dataloader = dict(dataset=dict(
    ann_file=f'{data_root}/val_list_videos.txt',
    data_prefix=dict(video=f'{data_root}/videos')))
study = dict(name='pretrain', note='frame-level pre-training (shape task)')
