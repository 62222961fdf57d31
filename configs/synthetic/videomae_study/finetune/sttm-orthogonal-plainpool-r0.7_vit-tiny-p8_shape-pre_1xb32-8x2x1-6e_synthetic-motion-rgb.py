# Ablation (pooling, amendment 6 of docs/results/videomae/PROTOCOL.md): the
# zoo's reading, sttm-orthogonal-r0.7, with the merged tokens pooled by
# their plain mean instead of the size-weighted mean (token_pool='mean').
_base_ = ['./sttm-orthogonal-r0.7_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']  # noqa: E501

model = dict(backbone=dict(token_pool='mean'))
study = dict(
    name='sttm-orthogonal-plainpool-r0.7',
    note='sttm-orthogonal-r0.7, merged tokens pooled by their plain mean')
