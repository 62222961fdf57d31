"""Print the paper's GFLOPs next to this implementation's, as markdown.

Rebuilds every row of the paper's Tables 1-6 that has a GFLOPs figure, for
merges after blocks (6, 9) (the paper's text) and after blocks (5, 8) (the
convention that reproduces the ViT-S+STTM figure), and prints one table.
Counts are per view at 1x3x8x224x224 (the paper's figures are x3 views).

Example::

    python tools/analysis_tools/paper_flops_table.py \\
        > docs/results/paper_flops.md
"""
from typing import Optional, Tuple

from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

VIT_S = dict(type='SpaceTimeViT', embed_dims=384, num_heads=6)
VIT_B = dict(type='SpaceTimeViT')
TSF = dict(
    type='MergingTimeSformer', num_frames=8, img_size=224, patch_size=16)

# name, backbone, frames, merger options (None: baseline), paper GFLOPs (x3),
# whether the layer list follows the (6, 9) -> (5, 8) shift.
ROWS = [
    ('ViT-S (T6)', VIT_S, 8, None, 170),
    ('ViT-S+STTM (T6)', VIT_S, 8, {}, 99),
    ('ViT-S+STTM, 13 frames (T6)', VIT_S, 13, {}, 164),
    ('ViT-S+STTM, no meta filter (T2)', VIT_S, 8, dict(meta_filter=False), 98),
    ('ViT-B (T6)', VIT_B, 8, None, 540),
    ('ViT-B+STTM (T6)', VIT_B, 8, {}, 345),
    ('ViT-B+STTM, 11 frames (T6)', VIT_B, 11, {}, 537),
    ('ViT-B+STTM, no meta filter (T2)', VIT_B, 8, dict(meta_filter=False),
     344),
    ('TimeSformer (T6)', TSF, 8, None, 590),
    ('TimeSformer+STTM (T6, T4 [6,9])', TSF, 8, {}, 368),
    ('TimeSformer+STTM, 11 frames (T6)', TSF, 11, {}, 572),
    ('TimeSformer+STTM, appearance only (T1)', TSF, 8, dict(motion=False),
     363),
    ('TimeSformer+STTM, no meta filter (T2)', TSF, 8, dict(meta_filter=False),
     367),
    ('TimeSformer+STTM, ratio 0.2 (T3)', TSF, 8, dict(ratio=0.2), 459),
    ('TimeSformer+STTM, ratio 0.4 (T3)', TSF, 8, dict(ratio=0.4), 412),
    ('TimeSformer+STTM, ratio 0.6 (T3)', TSF, 8, dict(ratio=0.6), 349),
    ('TimeSformer+STTM, ratio 0.8 (T3)', TSF, 8, dict(ratio=0.8), 332),
    ('TimeSformer+STTM [3] (T4)', TSF, 8,
     dict(layers=(3, ), stages=('spatial', )), 330),
    ('TimeSformer+STTM [6] (T4)', TSF, 8,
     dict(layers=(6, ), stages=('spatial', )), 418),
    ('TimeSformer+STTM [9] (T4)', TSF, 8,
     dict(layers=(9, ), stages=('spatial', )), 505),
    ('TimeSformer+STTM [3,6] (T4)', TSF, 8, dict(layers=(3, 6)), 271),
    ('TimeSformer+STTM, spatial only (T5)', TSF, 8,
     dict(stages=('spatial', 'spatial')), 389),
    ('TimeSformer+STTM, global only (T5)', TSF, 8,
     dict(stages=('spatiotemporal', 'spatiotemporal')), 459),
]


def _gflops(backbone: dict, frames: int, merger: Optional[dict],
            shift: int) -> Tuple[float, float]:
    from mmaction_sttm.analysis import complexity
    from mmaction_sttm.registry import MODELS
    if merger is not None:
        merger = dict(merger)
        layers = merger.pop('layers', (6, 9))
        merger['layers'] = tuple(k - shift for k in layers)
        backbone = dict(backbone, merger=dict(type='STTM', **merger))
    dims = backbone.get('embed_dims', 768)
    model = MODELS.build(
        dict(
            type='Recognizer3D',
            backbone=backbone,
            cls_head=dict(
                type='TimeSformerHead', num_classes=400, in_channels=dims),
            data_preprocessor=dict(
                type='ActionDataPreprocessor', format_shape='NCTHW')))
    result = complexity(model, (1, 3, frames, 224, 224))
    return result['flops'] / 1e9, result['params'] / 1e6


def main() -> None:
    init_default_scope('mmaction')
    MMLogger.get_instance('mmengine', log_level='WARNING')
    import mmaction_sttm  # noqa: F401
    print('| model (paper table) | paper GFLOPs x3 | paper / 3 | '
          'ours, merges after (6, 9) | gap | ours, after (5, 8) | gap | '
          'params (6, 9) |')
    print('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    for name, backbone, frames, merger, paper in ROWS:
        ours, params = _gflops(backbone, frames, merger, 0)
        if merger is None:
            shifted = ours
        else:
            layers = merger.get('layers', (6, 9))
            shifted = _gflops(backbone, frames, merger, 1)[0] \
                if min(layers) > 1 else float('nan')
        per_view = paper / 3
        print(
            f'| {name} | {paper} | {per_view:.1f} | {ours:.1f} | '
            f'{100 * (ours / per_view - 1):+.1f}% | {shifted:.1f} | '
            f'{100 * (shifted / per_view - 1):+.1f}% | {params:.1f}M |',
            flush=True)


if __name__ == '__main__':
    main()
