# (b) STTM, orthogonal init, ratio 0.7, meta filter ranked by cosine similarity
# to the mean token instead of the mean query's attention (no CLS here).
_base_ = ['./sttm-orthogonal-r0.7_vit-tiny-p8_shape-pre_1xb32-8x2x1-6e_synthetic-motion-rgb.py']

model = dict(backbone=dict(merger=dict(meta_score='cosine')))
study = dict(
    name='sttm-orthogonal-cosine-r0.7',
    note='STTM, meta filter by cosine to the mean token',
    curve='meta by cosine')
