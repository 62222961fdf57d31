"""Tables and the plot of the exploratory study
(``tools/analysis_tools/study.py``): one row per variant with its GFLOPs, val
(dev) and train top-1 over seeds, and val top-1 against GFLOPs, one curve per
merger."""
import csv
import os
import os.path as osp
import statistics
from typing import Dict, List, Optional, Sequence

from .records import RunRecord
from .variants import REGIMES, TITLES, Variant


def _commit(result: RunRecord) -> str:
    return result.commit[:7] + ('+' if result.dirty else '')


def summarise(variants: List[Variant],
              seeds: Optional[Sequence[int]] = None) -> List[Dict]:
    """One row per variant: GFLOPs, val and train top-1 (mean, std, per
    seed) and the commits of its runs.

    Args:
        variants (list[Variant]): Variants with their results.
        seeds (Sequence[int], optional): The seeds asked for; one of them
            without a result shows as ``not-run``. Defaults to the seeds
            each variant has.

    Returns:
        list[dict]: One row per variant, baselines first.
    """
    rows = []
    for v in sorted(variants, key=lambda v: v.curve != 'baseline'):
        have = sorted(v.results)
        val = [v.results[s].top1('dev') for s in have]
        train = [v.results[s].top1('train') for s in have]
        rows.append(
            dict(
                regime=v.regime,
                variant=v.name,
                curve=v.curve,
                note=v.note,
                config=v.config,
                gflops=v.gflops,
                params_m=v.params_m,
                seeds=len(have),
                val_top1_mean=statistics.mean(val),
                val_top1_std=statistics.stdev(val) if len(val) > 1 else 0.0,
                train_top1_mean=statistics.mean(train),
                train_top1_std=statistics.stdev(train)
                if len(train) > 1 else 0.0,
                val_top1_per_seed=' '.join(
                    f'{v.results[s].top1("dev"):.1f}' if s in
                    v.results else 'not-run'
                    for s in (have if seeds is None else seeds)),
                commits=' '.join(
                    sorted({_commit(v.results[s])
                            for s in have}))))
    return rows


def write_results(rows: List[Dict], out: str, name: str, title: str,
                  seeds: Sequence[int], command: str, commit: str) -> None:
    """Write ``NAME.md``, ``NAME.csv`` and ``NAME.png`` to ``out``.

    Args:
        rows (list[dict]): :func:`summarise`'s rows.
        out (str): Output folder.
        name (str): File stem.
        title (str): Title of the markdown table.
        seeds (Sequence[int]): The seeds asked for.
        command (str): The command that made the table.
        commit (str): The commit the table was written at.
    """
    os.makedirs(out, exist_ok=True)
    lines = [
        f'# {title}', '',
        f'Measured here with `{command}`; table written at commit '
        f'`{commit}`, each run at the commit in the CSV (`commits`). '
        f'Seeds: {list(seeds)}. Top-1 in %, mean +- std over seeds: val on '
        'the validation (dev) split with 1 clip x 3 crops, train on as many '
        'training videos. GFLOPs per view at each config\'s clip shape '
        '(1x3xTx32x32).', ''
    ]
    for regime in REGIMES:
        part = [r for r in rows if r['regime'] == regime]
        if not part:
            continue
        base = next((r['gflops'] for r in part if r['curve'] == 'baseline'),
                    None)
        lines += [
            f'## {TITLES[regime]}', '',
            '| variant | what it is | GFLOPs | vs baseline | params (M) '
            '| val top-1 | train top-1 | val per seed |',
            '| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |'
        ]
        for r in part:
            saving = (f'{100 * (r["gflops"] / base - 1):+.1f}%'
                      if base else '')
            lines.append(
                f'| {r["variant"]} | {r["note"]} | {r["gflops"]:.5f} | '
                f'{saving} | {r["params_m"]:.3f} | '
                f'{r["val_top1_mean"]:.1f} +- {r["val_top1_std"]:.1f} | '
                f'{r["train_top1_mean"]:.1f} +- {r["train_top1_std"]:.1f} | '
                f'{r["val_top1_per_seed"]} |')
        lines.append('')
    lines.append(f'![val top-1 against GFLOPs]({name}.png)')
    with open(osp.join(out, f'{name}.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    with open(osp.join(out, f'{name}.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, osp.join(out, f'{name}.png'))


def plot(rows: List[Dict], path: str) -> None:
    """Val top-1 against GFLOPs, one curve per merger, per regime.

    Where a regime has curves (variants sharing ``study.curve`` at several
    GFLOPs), the single-point variants (readings, trends) are drawn as grey
    crosses under one legend entry; the table names them."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    regimes = [r for r in REGIMES if any(x['regime'] == r for x in rows)]
    fig, axes = plt.subplots(
        1, len(regimes), figsize=(6 * len(regimes), 4.5), squeeze=False)
    for ax, regime in zip(axes[0], regimes):
        part = [r for r in rows if r['regime'] == regime]
        curves: Dict[str, List[Dict]] = {}
        for r in part:
            curves.setdefault(r['curve'], []).append(r)
        has_curves = any(len(p) > 1 for p in curves.values())
        singles_labelled = False
        for curve, points in curves.items():
            points.sort(key=lambda r: r['gflops'])
            style, label, color = 'o-', curve, None
            if curve == 'baseline':
                style = 'k*'
            elif has_curves and len(points) == 1:
                style, color = 'x', '0.55'
                label = None if singles_labelled else \
                    'single-point ablations (table)'
                singles_labelled = True
            ax.errorbar([p['gflops'] for p in points],
                        [p['val_top1_mean'] for p in points],
                        yerr=[p['val_top1_std'] for p in points],
                        fmt=style,
                        capsize=3,
                        label=label,
                        markersize=6,
                        color=color)
        if has_curves:
            # The curves' range: a collapsed reading far below would squash
            # them (the table has it).
            shown = [
                r['val_top1_mean'] for c, p in curves.items()
                if len(p) > 1 or c == 'baseline' for r in p
            ]
            ax.set_ylim(min(shown) - 8, max(shown) + 6)
        ax.set_title(TITLES[regime].split(':')[0], fontsize=9)
        ax.set_xlabel('GFLOPs per view')
        ax.set_ylabel('val top-1 (%)')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
