# RLT (run-length tokenization, docs/mergers.md) on the confirmatory study's
# model (the paper's ViT with a CLS token, 2-frame tubelets of 8x8 patches,
# 4 blocks), on the static-camera variant of the synthetic motion videos,
# where the background stands still and only the objects and the sensor
# noise change. Make the data with
#   python tools/data/make_synthetic_videos.py data/rlt/static --camera static
# The threshold is in the units of the normalised input.
_base_ = ['../confirm/confirm_spacetime-vit-tiny-p8-t2_shape-pre_1xb32-8x2x1-30e_synthetic-motion-rgb.py']

data_root = 'data/rlt/static'
model = dict(
    backbone=dict(
        reducer=dict(type='RLT', threshold=0.1)))
train_dataloader = dict(
    dataset=dict(
        ann_file=f'{data_root}/train_list_videos.txt',
        data_prefix=dict(video=f'{data_root}/videos')))
val_dataloader = dict(
    dataset=dict(
        ann_file=f'{data_root}/val_list_videos.txt',
        data_prefix=dict(video=f'{data_root}/videos')))
test_dataloader = val_dataloader
