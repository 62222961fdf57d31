"""How many graphs ``torch.compile`` makes of a tiny merging backbone with
RLT, per batch size: the measure of per-video work under compile.

A tiny backbone of the package's catalog (4 blocks, as the studies' model,
4 frames of 32 x 32 pixels) with RLT (threshold 0.1, the backbone's
``batching`` padded or packed) and optionally a merger
after blocks 1 and 2 (spatio-temporal) runs through ``torch._dynamo.explain``
on batches in which every video has a different token count (video ``b``
repeats a band of ``8 (b + 1)`` columns over its frames). A count that grows
with the batch means a Python loop over the videos.

Example::

    python tools/analysis_tools/graph_count.py --merger ToMe --mode padded \\
        --batches 2 4 8
"""
import argparse
from typing import List, Optional

MERGERS = {
    'none': None,
    'STTM': dict(type='STTM', ratio=0.5),
    'ToMe': dict(type='ToMe', ratio=0.3),
    'EViT': dict(type='EViT', ratio=0.5),
}


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--family', default='vit')
    parser.add_argument('--merger', choices=sorted(MERGERS), default='none')
    parser.add_argument(
        '--mode', choices=('padded', 'packed'), default='padded')
    parser.add_argument('--batches', type=int, nargs='+', default=[2, 4, 8])
    parser.add_argument(
        '--depth', type=int, default=4, help='blocks (default 4)')
    return parser.parse_args(argv)


def clip(batch: int, frames: int, size: int):
    """Random clips whose video ``b`` repeats its first frame over a band
    of ``8 (b + 1)`` columns (modulo the width): every video of the batch
    keeps another number of tokens."""
    import torch
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, frames, size, size, generator=generator)
    for b in range(batch):
        width = 8 * (b + 1) % size
        x[b, :, 1:, :width] = x[b, :, :1, :width]
    return x


def count(family: str,
          merger: Optional[str],
          mode: str,
          batch: int,
          depth: int = 4) -> dict:
    """Graphs and graph breaks of one forward pass under dynamo.

    Returns:
        dict: ``graphs`` and ``breaks``.
    """
    import torch
    import torch._dynamo as dynamo
    from mmengine.registry import init_default_scope

    import mmaction_sttm  # noqa: F401
    from mmaction_sttm.models.catalog import family as catalog_family
    from mmaction_sttm.registry import MODELS
    init_default_scope('mmaction')
    frames, size = 4, 32
    cfg = dict(
        catalog_family(family).tiny(32, frames, size),
        reducer=dict(type='RLT', threshold=0.1),
        batching=mode)
    for key in ('depth', 'num_layers', 'num_transformer_layers'):
        if key in cfg:  # each family names its depth
            cfg[key] = depth
    if MERGERS[merger] is not None:
        cfg['merger'] = dict(
            MERGERS[merger],
            layers=(1, 2),
            stages=('spatiotemporal', 'spatiotemporal'))
    torch.manual_seed(0)
    model = MODELS.build(cfg).eval()
    dynamo.reset()
    with torch.no_grad():
        explained = dynamo.explain(model)(clip(batch, frames, size))
    return dict(
        graphs=explained.graph_count, breaks=explained.graph_break_count)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    print(f'{args.family} + RLT ({args.mode}) + {args.merger}')
    for batch in args.batches:
        result = count(args.family, args.merger, args.mode, batch, args.depth)
        print(f'batch {batch}: {result["graphs"]} graphs, '
              f'{result["breaks"]} graph breaks')


if __name__ == '__main__':
    main()
