# Ablation (merge layers): STTM as the zoo's reading, merging after blocks 1
# and 3 instead of 2 and 3 (more GFLOPs removed; one change at a time).
_base_ = ['./sttm-orthogonal-r0.7_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']  # noqa: E501

model = dict(backbone=dict(merger=dict(layers=(1, 3))))
study = dict(
    name='sttm-orthogonal-layers13-r0.7',
    note='STTM, orthogonal init, ratio 0.7, merges after blocks 1 and 3',
    curve='STTM (orthogonal, layers 1, 3)')
