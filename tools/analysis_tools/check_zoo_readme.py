"""Check the model zoo's GFLOPs and parameters against the code.

Every row of the results tables of a zoo's README (``configs/sttm/README.md``,
``configs/videomae/README.md``) links a config and states its GFLOPs per
view, its parameters and, in the STTM zoo, GFLOPs for three views; the
zoo's ``metafile.yml`` repeats them. This script measures each config as
``tools/analysis_tools/get_flops.py`` does (one view of ``1x3xTx224x224``,
``T`` the config's frames, MMEngine's counter) and reports every figure that
is off by more than the rounding of the table::

    python tools/analysis_tools/check_zoo_readme.py [--zoo sttm videomae] \
        [--configs PATTERN ...]

Measuring all 35 STTM configs takes several minutes on a CPU, the 12
VideoMAE ViT-L / ViT-H configs about two; ``tests/configs/test_zoo_readme.py``
runs the same checks on a subset.
"""
import argparse
import fnmatch
import os.path as osp
import re
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# The zoos: folders of configs/ with a README.md and a metafile.yml.
ZOOS = ('sttm', 'videomae')
ZOO = osp.join(REPO, 'configs', 'sttm')
README = osp.join(ZOO, 'README.md')
METAFILE = osp.join(ZOO, 'metafile.yml')

# Column headers of the results tables.
GFLOPS_COLUMN = 'GFLOPs / view'
GFLOPS_X3_COLUMN = 'GFLOPs x3'
PARAMS_COLUMN = 'params (M)'
# Tables round to two decimals; the counter is exact.
TOLERANCE = 0.01


@dataclass
class ZooRow:
    """One results-table row of the README.

    Args:
        config (str): Config path relative to the repository.
        gflops (float): GFLOPs per view.
        gflops_x3 (float, optional): GFLOPs of three views (the STTM zoo's
            column, the unit of the paper's tables); None where the table
            has no such column.
        params (float): Parameters in millions.
    """
    config: str
    gflops: float
    gflops_x3: Optional[float]
    params: float


def zoo_files(zoo: str) -> Tuple[str, str]:
    """The README and the metafile of a zoo of :data:`ZOOS`."""
    folder = osp.join(REPO, 'configs', zoo)
    return osp.join(folder, 'README.md'), osp.join(folder, 'metafile.yml')


def _cells(line: str) -> List[str]:
    return [cell.strip() for cell in line.strip().strip('|').split('|')]


def parse_readme(path: str = README) -> List[ZooRow]:
    """Rows of every table that has the GFLOPs and params columns.

    Args:
        path (str): The README.

    Returns:
        list[ZooRow]: One per row that links a ``.py`` config.
    """
    rows: List[ZooRow] = []
    header: Optional[List[str]] = None
    with open(path) as f:
        for line in f:
            if not line.lstrip().startswith('|'):
                header = None
                continue
            cells = _cells(line)
            if header is None:
                header = cells
                continue
            if GFLOPS_COLUMN not in header or set(
                    ''.join(cells)) <= set('-: '):
                continue
            link = re.search(r'\]\(([^)]+\.py)\)', cells[0])
            if not link:
                continue
            column = dict(zip(header, cells))
            rows.append(
                ZooRow(
                    config=osp.relpath(
                        osp.normpath(
                            osp.join(osp.dirname(path), link.group(1))), REPO),
                    gflops=float(column[GFLOPS_COLUMN]),
                    gflops_x3=float(column[GFLOPS_X3_COLUMN])
                    if GFLOPS_X3_COLUMN in column else None,
                    params=float(column[PARAMS_COLUMN])))
    return rows


def parse_metafile(path: str = METAFILE) -> Dict[str, dict]:
    """Config path -> ``Metadata`` of ``metafile.yml``."""
    import yaml
    with open(path) as f:
        meta = yaml.safe_load(f)
    return {model['Config']: model for model in meta['Models']}


def measure(config: str) -> Tuple[float, float]:
    """GFLOPs per view and parameters (M) of a config, as get_flops.py.

    Args:
        config (str): Config path relative to the repository.

    Returns:
        tuple[float, float]: GFLOPs per view and millions of parameters.
    """
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import mmaction_sttm  # noqa: F401
    from mmaction_sttm.analysis import complexity
    from mmaction_sttm.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, config))
    init_default_scope(cfg.get('default_scope', 'mmaction'))
    # Counting needs no weights: the figures do not depend on them.
    cfg.model.backbone.pretrained = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    frames = cfg.model.backbone.num_frames
    result = complexity(model, (1, 3, frames, 224, 224))
    return result['flops'] / 1e9, result['params'] / 1e6


def check_row(row: ZooRow, gflops: float, params: float) -> List[str]:
    """Differences between a README row and measured figures."""
    errors = []
    if abs(row.gflops - gflops) > TOLERANCE:
        errors.append(f'{row.config}: GFLOPs / view {row.gflops} in the '
                      f'README, measured {gflops:.4f}')
    if row.gflops_x3 is not None and abs(row.gflops_x3 -
                                         3 * gflops) > 3 * TOLERANCE:
        errors.append(f'{row.config}: GFLOPs x3 {row.gflops_x3} in the '
                      f'README, measured {3 * gflops:.4f}')
    if abs(row.params - params) > TOLERANCE:
        errors.append(f'{row.config}: params {row.params} M in the README, '
                      f'measured {params:.4f} M')
    return errors


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--zoo',
        nargs='*',
        choices=ZOOS,
        default=list(ZOOS),
        help='the zoos whose README rows to check (default: all)')
    parser.add_argument(
        '--configs',
        nargs='*',
        default=['*'],
        help='only the README rows whose config path matches one of these '
        'shell patterns')
    args = parser.parse_args(argv)
    rows = [
        row for zoo in args.zoo for row in parse_readme(zoo_files(zoo)[0])
        if any(fnmatch.fnmatch(row.config, p) for p in args.configs)
    ]
    errors = []
    for row in rows:
        gflops, params = measure(row.config)
        errors += check_row(row, gflops, params)
        print(f'{row.config}: {gflops:.2f} GFLOPs / view, {params:.2f} M')
    for error in errors:
        print(f'MISMATCH {error}', file=sys.stderr)
    print(f'{len(rows)} rows checked, {len(errors)} mismatches')
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
