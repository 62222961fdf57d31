# RLT (run-length tokenization; Choudhury et al., NeurIPS 2024) before the
# first block of the ViT-S/16 baseline on Kinetics-400, 8 frames: the
# tubelets that repeat the one at the same place in the previous frame are
# dropped, each run keeping its first (docs/mergers.md, "RLT"). The token
# count then depends on the video; a batch is padded to its longest video.
# Off the shelf on a trained baseline (load_from its checkpoint) the zero
# length embedding leaves every kept token as it was.
_base_ = ['../sttm/vit-small-p16_in1k-pre_8xb8-8x8x1-30e_kinetics400-rgb.py']

model = dict(
    backbone=dict(
        reducer=dict(type='RLT', threshold=0.1)))
