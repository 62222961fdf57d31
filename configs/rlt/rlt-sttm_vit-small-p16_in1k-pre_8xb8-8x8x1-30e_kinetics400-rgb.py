# RLT, then STTM: the repeats are removed at the input, then STTM merges
# what is left, with the zoo's STTM reading (configs/_base_/models/
# vit-small-p16_sttm.py). After RLT the frames no longer hold the same number
# of tokens, so both merges are spatio-temporal: a 'spatial' merge needs
# every frame's full patch grid and is refused with a reducer.
_base_ = ['../sttm/sttm_vit-small-p16_in1k-pre_8xb8-8x8x1-30e_kinetics400-rgb.py']

model = dict(
    backbone=dict(
        reducer=dict(type='RLT', threshold=0.1),
        merger=dict(stages=('spatiotemporal', 'spatiotemporal'))))
