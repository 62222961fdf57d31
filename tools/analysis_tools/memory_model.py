"""The per-rank memory model of docs/scale.md, checked against the rows that
``train_memory.py`` measured, and its figures for 8 and 64 GPUs.

Per rank, in bytes, float32 weights and AdamW (two moments), ``P``
parameters (``P_b`` per block, ``P_r`` outside the blocks), ``N`` ranks,
width ``D``, and ``T`` the token-blocks of one step (the sum over blocks of
the batch's tokens; ``T_max`` the longest block's):

- one process: held ``4P + 8P`` (weights, moments); step ``4P + A``
  (gradients, activations);
- DDP: as one process, plus ``4P`` of gradient buckets (the model's
  figure, not measured here);
- FSDP, a unit per block: held ``(4P + 4P + 8P) / N`` (weight, gradient
  and moment shards); step ``A + 4 (P_r + 3 P_b)`` (the root unit gathered
  for the whole step, one block gathered with the next prefetched, one
  block's full gradient before its reduce-scatter);
- activations ``A = 4 k D T`` without checkpointing, and
  ``A = 4 D T + 4 k D T_max`` with it (each block's input kept, one block's
  activations while it is recomputed).

``k`` (activation floats per token, block and channel) is the one fitted
number: from the ViT-B, unmerged, one-process row without checkpointing.
Every other row is a prediction.

Example::

    python tools/analysis_tools/memory_model.py work_dirs/memory/table.jsonl
"""
import argparse
import json
from typing import Dict, List, Optional, Tuple

MIB = 2**20
GIB = 2**30
#: VideoMAE ViTs (width, depth) and the clip's tokens (16 x 224 x 224,
#: tubelets of 2 frames of 16 x 16 patches).
MODELS = {'ViT-B': (768, 12), 'ViT-L': (1024, 24), 'ViT-H': (1280, 32)}
TOKENS = 8 * 14 * 14
#: Parameters outside the blocks: tubelet embedding, final norm, a
#: 400-class head.
ROOT = {
    w: 3 * 2 * 16 * 16 * w + w + 2 * w + 400 * (w + 1)
    for w, _ in MODELS.values()
}


def block_params(width: int) -> int:
    """Parameters of one ViT block: qkv (q and v biases), projection, MLP
    (4x), two norms."""
    return 12 * width * width + 13 * width


def params(width: int, depth: int) -> int:
    return depth * block_params(width) + ROOT[width]


def predict(width: int,
            depth: int,
            ranks: int,
            with_cp: bool,
            token_blocks: int,
            max_tokens: int,
            k: float,
            p_total: Optional[int] = None) -> Tuple[float, float]:
    """Held and step bytes of one rank."""
    p = p_total or params(width, depth)
    p_block = block_params(width)
    if with_cp:
        act = 4 * width * token_blocks + 4 * k * width * max_tokens
    else:
        act = 4 * k * width * token_blocks
    if ranks == 1:
        return 12 * p, 4 * p + act
    return 16 * p / ranks, act + 4 * (p - depth * p_block + 3 * p_block)


def fit_k(rows: List[Dict]) -> float:
    """``k`` from the ViT-B, unmerged, one-process row without
    checkpointing."""
    for row in rows:
        if (row['width'], row['depth']) == MODELS['ViT-B'] and \
                row['tokens'] == 'unmerged' and row['ranks'] == 1 and \
                not row['cfg_options'].get('model.backbone.with_cp'):
            act = row['step_mib'] * MIB - 4 * _p(row)
            return act / (4 * row['width'] * row['token_blocks'])
    raise ValueError('no ViT-B unmerged one-process row without with_cp')


def _p(row: Dict) -> float:
    """The model's parameters, from the row's counted tensors."""
    return row['params_mib'] * MIB * row['ranks'] / 4


def check(rows: List[Dict], k: float) -> str:
    """Measured against predicted peak per rank, every row."""
    lines = [
        '| model | tokens | with_cp | ranks | measured (MiB) | model (MiB) '
        '| error |', '| --- | --- | --- | ---: | ---: | ---: | ---: |'
    ]
    seen = set()
    for row in rows:
        cp = bool(row['cfg_options'].get('model.backbone.with_cp'))
        key = (row['width'], row['depth'], row['tokens'], row['clip'], cp,
               row['ranks'])
        if key in seen:  # FSDP: one row per rank; the first stands
            continue
        seen.add(key)
        held, step = predict(row['width'], row['depth'], row['ranks'],
                             cp, row['token_blocks'], row['max_tokens'], k,
                             _p(row))
        model = (held + step) / MIB
        name = {
            v: n
            for n, v in MODELS.items()
        }.get((row['width'], row['depth']), f"{row['depth']}x{row['width']}")
        tokens = row['tokens'] + (f" ({row['clip']} clip)"
                                  if row['clip'] != 'random' else '')
        lines.append(f"| {name} | {tokens} | {'yes' if cp else 'no'} | "
                     f"{row['ranks']} | {row['peak_mib']:.0f} | {model:.0f} "
                     f"| {100 * (model / row['peak_mib'] - 1):+.0f}% |")
    return '\n'.join(lines)


def project(k: float, batch: int = 2) -> str:
    """Per-rank GiB at 8 and 64 GPUs, ``batch`` clips of 16 x 224 x 224 per
    GPU, unmerged and with STTM at -33% (its token-blocks: the unmerged
    ones times 0.667)."""
    lines = [
        '| model | tokens | with_cp | DDP | FSDP, 8 GPUs | FSDP, 64 GPUs |',
        '| --- | --- | --- | ---: | ---: | ---: |'
    ]
    for name, (width, depth) in MODELS.items():
        for tokens, share in (('unmerged', 1.0), ('STTM -33%', 0.667)):
            for cp in (False, True):
                t = int(batch * TOKENS * depth * share)
                t_max = batch * TOKENS
                ddp = sum(predict(width, depth, 1, cp, t, t_max, k))
                ddp += 4 * params(width, depth)  # gradient buckets
                cells = [f'{ddp / GIB:.1f}']
                for ranks in (8, 64):
                    cells.append(
                        f'{sum(predict(width, depth, ranks, cp, t, t_max, k)) / GIB:.1f}'  # noqa: E501
                    )
                lines.append(f"| {name} | {tokens} | {'yes' if cp else 'no'}"
                             f" | {' | '.join(cells)} |")
    return '\n'.join(lines)


def fill_tokens(row: Dict, config_dir: str = 'configs/videomae') -> Dict:
    """``width``, ``depth``, ``tokens``, ``token_blocks`` and
    ``max_tokens`` of a row written before ``train_memory.py`` recorded
    them: the model is built and its token counts taken on the row's
    clips."""
    if 'token_blocks' in row:
        return row
    import importlib.util
    import os.path as osp

    from mmengine.registry import init_default_scope

    import mmaction_sttm  # noqa: F401
    from mmaction_sttm import tooling
    from mmaction_sttm.registry import MODELS
    here = osp.dirname(osp.abspath(__file__))
    spec = importlib.util.spec_from_file_location(
        'train_memory', osp.join(here, 'train_memory.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    cfg = tooling.load_config(osp.join(config_dir, row['config']))
    cfg.merge_from_dict(row['cfg_options'])
    tooling.disable_pretrained(cfg.model)
    init_default_scope('mmaction')
    model = MODELS.build(cfg.model)
    args = argparse.Namespace(
        batch_size=row['batch_size'], shape=row['shape'], clip=row['clip'])
    backbone = cfg.model.backbone
    tokens = (backbone.get('reducer') or {}).get('type') or \
        (backbone.get('merger') or {}).get('type') or 'unmerged'
    return dict(
        row,
        width=int(model.backbone.embed_dims),
        depth=int(model.backbone.num_blocks),
        tokens=tokens,
        **tool._token_blocks(model.backbone, tool._clips(args)))


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('rows', help='JSON lines of train_memory.py')
    args = parser.parse_args(argv)
    with open(args.rows) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    rows = [fill_tokens(row) for row in rows]
    k = fit_k(rows)
    print(f'k = {k:.2f} activation floats per token, block and channel '
          '(fitted: ViT-B, unmerged, one process, no checkpointing)\n')
    print(check(rows, k))
    print()
    print(project(k))


if __name__ == '__main__':
    main()
