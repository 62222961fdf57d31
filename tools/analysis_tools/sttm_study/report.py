"""Tables and plots of a study's results, from the runs' records alone.

:func:`confirmatory_report` turns the committed per-run records of a
pre-registered comparison into the tables the protocol asks for (per
variant: train, dev and test top-1; per comparison: paired differences with
t and bootstrap intervals, Holm-adjusted p-values, the equivalence test
against the baseline) and two plots (a forest plot of the differences and
the learning curves). No training, no model: the same records always give
the same files.
"""
import csv
import os
import statistics
from typing import Dict, List, Optional, Sequence

import numpy as np

from . import stats
from .records import RunRecord


def _by_variant(
        records: Sequence[RunRecord]) -> Dict[str, Dict[int, RunRecord]]:
    out: Dict[str, Dict[int, RunRecord]] = {}
    for r in records:
        out.setdefault(r.variant, {})[r.seed] = r
    return out


def _ms(values: Sequence[float]) -> str:
    if not values:
        return 'n/a'
    if len(values) == 1:  # one seed: no spread to show
        return f'{values[0]:.2f}'
    return f'{statistics.mean(values):.2f} +- {statistics.stdev(values):.2f}'


def _fmt_p(p: float) -> str:
    return f'{p:.3f}' if p >= 0.001 else '< 0.001'


def compare(records: Sequence[RunRecord],
            primary: str,
            others: Sequence[str],
            split: str = 'test',
            margin: float = 2.0,
            alpha: float = 0.05) -> List[Dict]:
    """Paired comparisons of ``primary`` against each of ``others``.

    Only seeds that both variants ran are paired. The p-values of "no
    difference" are Holm-adjusted over ``others`` together; each row also
    has the TOST p-value of equivalence within ``+- margin``.

    Args:
        records (Sequence[RunRecord]): Run records.
        primary (str): The variant under test (e.g. STTM).
        others (Sequence[str]): What it is compared with (baseline, peers).
        split (str): Metric split. Defaults to ``'test'``.
        margin (float): Equivalence margin in points. Defaults to 2.0.
        alpha (float): Family-wise level. Defaults to 0.05.

    Returns:
        list[dict]: One row per comparison: ``other``, ``n``, ``mean``,
        ``sd``, ``ci_t``, ``ci_90``, ``ci_boot``, ``p``, ``p_holm``,
        ``p_tost``, ``wins``, ``ties``, ``losses``, ``verdict``.
    """
    runs = _by_variant(records)
    rows = []
    for other in others:
        seeds = sorted(set(runs.get(primary, {})) & set(runs.get(other, {})))
        if len(seeds) < 2:
            raise ValueError(f'{primary} against {other}: {len(seeds)} '
                             f'paired seed(s), need at least 2')
        a = [runs[primary][s].top1(split) for s in seeds]
        b = [runs[other][s].top1(split) for s in seeds]
        t = stats.paired_t(a, b)
        t90 = stats.paired_t(a, b, confidence=1 - 2 * alpha)
        wins, ties, losses, _ = stats.sign_test(a, b)
        rows.append(
            dict(
                other=other,
                n=t.n,
                seeds=seeds,
                mean=t.mean,
                sd=t.sd,
                ci_t=t.ci,
                ci_90=t90.ci,
                ci_boot=stats.bootstrap_ci(a, b),
                p=t.p,
                p_tost=stats.tost(a, b, margin),
                wins=wins,
                ties=ties,
                losses=losses))
    for row, adjusted in zip(rows, stats.holm([r['p'] for r in rows])):
        row['p_holm'] = adjusted
        if adjusted < alpha:
            row['verdict'] = 'ahead' if row['mean'] > 0 else 'behind'
        else:
            row['verdict'] = 'no difference shown'
        row['equivalent'] = row['p_tost'] < alpha
    return rows


def per_seed_table(records: Sequence[RunRecord],
                   primary: str,
                   others: Sequence[str],
                   split: str = 'test') -> List[str]:
    """The paired differences seed by seed (``primary`` minus each of
    ``others``), with the block each seed ran in when the records name one
    (``record['block']['id']``: runs that share one pre-trained backbone
    and one machine), and the mean difference of each block.

    Args:
        records (Sequence[RunRecord]): Run records.
        primary (str): The variant under test.
        others (Sequence[str]): What it is compared with.
        split (str): Metric split. Defaults to ``'test'``.

    Returns:
        list[str]: Markdown lines; empty when no seed has ``primary``.
    """
    runs = _by_variant(records)
    seeds = sorted(runs.get(primary, {}))
    if not seeds:
        return []

    ids: Dict[int, set] = {}
    for r in records:
        ids.setdefault(r.seed, set()).add((r.block or {}).get('id', '-'))
    block = {seed: ', '.join(sorted(names)) for seed, names in ids.items()}

    def diff(seed: int, other: str) -> Optional[float]:
        if seed not in runs.get(other, {}):
            return None
        return (runs[primary][seed].top1(split) -
                runs[other][seed].top1(split))

    def cell(value: Optional[float]) -> str:
        return '' if value is None else f'{value:+.2f}'

    lines = [
        '| seed | block | ' + ' | '.join(others) + ' |',
        '| ---: | --- |' + ' ---: |' * len(others)
    ]
    for seed in seeds:
        lines.append(f'| {seed} | {block[seed]} | ' +
                     ' | '.join(cell(diff(seed, o)) for o in others) + ' |')
    blocks = sorted({block[s] for s in seeds})
    if len(blocks) > 1:
        for name in blocks:
            mean = []
            for other in others:
                values = [diff(s, other) for s in seeds if block[s] == name]
                values = [v for v in values if v is not None]
                mean.append(cell(statistics.mean(values)) if values else '')
            lines.append(f'| mean, block {name} | | ' + ' | '.join(mean) +
                         ' |')
    return lines


def variant_table(
    records: Sequence[RunRecord],
    gflops: Dict[str, float],
    baseline: str,
    order: Sequence[str],
    splits: Sequence[str] = ('train', 'dev', 'test')
) -> List[str]:
    """Markdown rows: per variant, GFLOPs, seeds, top-1 per split (mean +-
    sd over seeds) and where its training stands (the last epochs' gain in
    train top-1).

    Args:
        records (Sequence[RunRecord]): Run records.
        gflops (dict): GFLOPs per view of each variant.
        baseline (str): The unmerged variant (GFLOPs reference).
        order (Sequence[str]): Variants, in table order.
        splits (Sequence[str]): Metric columns.

    Returns:
        list[str]: The table's lines.
    """
    runs = _by_variant(records)
    head = ' | '.join(f'{s} top-1' for s in splits)
    lines = [
        f'| variant | GFLOPs/view | vs baseline | seeds | {head} | '
        'train top-1, last 5 epochs |', '| --- | ---: | ---: | ---: | ' +
        ' | '.join('---:' for _ in splits) + ' | --- |'
    ]
    for name in order:
        if name not in runs:
            continue
        seeds = sorted(runs[name])
        cells = []
        for split in splits:
            cells.append(
                _ms([
                    runs[name][s].top1(split) for s in seeds
                    if runs[name][s].has(split)
                ]))
        tail = plateau(runs[name].values())
        rel = 100 * (gflops[name] / gflops[baseline] - 1)
        lines.append(f'| {name} | {gflops[name]:.5f} | {rel:+.1f}% | '
                     f'{len(seeds)} | ' + ' | '.join(cells) + f' | {tail} |')
    return lines


def robustness_table(records: Sequence[RunRecord],
                     baseline: str,
                     order: Sequence[str],
                     splits: Sequence[str],
                     margin: float = 5.0) -> List[str]:
    """Markdown rows: per variant and split, the mean and sd over seeds, the
    worst seed, and the collapse rate: the seeds on which the variant is
    more than ``margin`` points below the baseline of the same seed (the
    same pre-trained backbone).

    Args:
        records (Sequence[RunRecord]): Run records.
        baseline (str): The unmerged variant.
        order (Sequence[str]): Variants, in table order.
        splits (Sequence[str]): Splits, each a group of columns.
        margin (float): Points below the same seed's baseline that count
            as a collapse. Defaults to 5.0.

    Returns:
        list[str]: The table's lines.
    """
    runs = _by_variant(records)
    base = runs.get(baseline, {})
    head, rule = '| variant |', '| --- |'
    for split in splits:
        head += (f' {split}: mean +- sd | worst (seed) | minus baseline | '
                 f'collapses |')
        rule += ' ---: | ---: | ---: | ---: |'
    lines = [head, rule]
    for name in order:
        if name not in runs:
            continue
        cells = []
        for split in splits:
            top1 = {
                s: r.top1(split)
                for s, r in runs[name].items() if r.has(split)
            }
            if not top1:
                cells += ['', '', '', '']
                continue
            worst = min(top1, key=lambda s: (top1[s], s))
            paired = [s for s in top1 if s in base and base[s].has(split)]
            diffs = [top1[s] - base[s].top1(split) for s in paired]
            fell = sum(d < -margin for d in diffs)
            cells += [
                _ms(list(top1.values())), f'{top1[worst]:.2f} ({worst})',
                f'{statistics.mean(diffs):+.2f}' if diffs else '',
                f'{fell} / {len(diffs)}' if diffs else ''
            ]
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return lines


def ablation_table(records: Sequence[RunRecord], reference: str,
                   ablations: Sequence[str],
                   splits: Sequence[str]) -> List[str]:
    """Markdown rows: each ablation minus ``reference``, paired on the
    seeds both ran, per split: mean difference, 95% t interval and the
    seeds (an ablation that has run on fewer seeds than the reference is
    compared on its own seeds only).

    Args:
        records (Sequence[RunRecord]): Run records.
        reference (str): The variant each ablation changes one thing of.
        ablations (Sequence[str]): The ablations, in table order.
        splits (Sequence[str]): Splits, each a group of columns.

    Returns:
        list[str]: The table's lines; empty when no ablation has two
        seeds paired with the reference.
    """
    runs = _by_variant(records)
    head = ''.join(f' {s}: minus {reference} | 95% CI |' for s in splits)
    lines = [
        '| ablation | seeds |' + head,
        '| --- | --- |' + ' ---: | --- |' * len(splits)
    ]
    for name in ablations:
        seeds = sorted(set(runs.get(name, {})) & set(runs.get(reference, {})))
        if len(seeds) < 2:
            continue
        cells = []
        for split in splits:
            a = [runs[name][s].top1(split) for s in seeds]
            b = [runs[reference][s].top1(split) for s in seeds]
            t = stats.paired_t(a, b)
            cells += [f'{t.mean:+.2f}', f'[{t.ci[0]:+.2f}, {t.ci[1]:+.2f}]']
        lines.append(f'| {name} | {", ".join(map(str, seeds))} | ' +
                     ' | '.join(cells) + ' |')
    return lines if len(lines) > 2 else []


def class_table(records: Sequence[RunRecord], order: Sequence[str], split: str,
                class_names: Sequence[str]) -> List[str]:
    """Markdown rows: per variant, top-1 of each class on ``split`` (mean
    over seeds), from the records' per-video predictions; what a variant
    gets wrong (e.g. speed or direction) shows as the classes it loses.

    Args:
        records (Sequence[RunRecord]): Run records with ``predictions`` on
            ``split``.
        order (Sequence[str]): Variants, in table order.
        split (str): A split whose predictions the records keep.
        class_names (Sequence[str]): Column heads, in label order.

    Returns:
        list[str]: The table's lines; empty when no record has predictions
        on ``split``.
    """
    runs = _by_variant(records)
    lines = [
        '| variant | seeds | ' + ' | '.join(class_names) + ' |',
        '| --- | ---: |' + ' ---: |' * len(class_names)
    ]
    for name in order:
        per_class: Dict[int, List[float]] = {}
        seeds = 0
        for record in runs.get(name, {}).values():
            pred = record.metrics.get(split, {}).get('predictions')
            if pred is None:
                continue
            seeds += 1
            labels = np.array(pred['label'].split(), dtype=int)
            hits = labels == np.array(pred['pred'].split(), dtype=int)
            for label in range(len(class_names)):
                mask = labels == label
                if mask.any():
                    per_class.setdefault(label, []).append(
                        100 * float(hits[mask].mean()))
        if not seeds:
            continue
        lines.append(f'| {name} | {seeds} | ' + ' | '.join(
            f'{statistics.mean(per_class[c]):.1f}' if c in per_class else ''
            for c in range(len(class_names))) + ' |')
    return lines if len(lines) > 2 else []


def plateau(runs: Sequence[RunRecord], last: int = 5) -> str:
    """The mean train top-1 over seeds at the start and end of the last
    ``last`` epochs, e.g. ``'96.1 -> 96.4'``: where training stands."""
    curves = [r.curve for r in runs if r.curve]
    if not curves:
        return 'not trained'
    depth = min(len(c) for c in curves)
    if depth < 2:
        return 'n/a'
    k = min(last, depth)
    first = statistics.mean(c[-k].get('train_top1', float('nan'))
                            for c in curves)
    end = statistics.mean(c[-1].get('train_top1', float('nan'))
                          for c in curves)
    return f'{first:.1f} -> {end:.1f}'


def comparison_table(rows: Sequence[Dict], primary: str,
                     margin: float) -> List[str]:
    """Markdown lines of :func:`compare`'s rows."""
    lines = [
        f'| {primary} minus | seeds | mean | 95% CI (t) | 95% CI '
        f'(bootstrap) | p | p (Holm) | 90% CI | TOST p (+-{margin:g}) | '
        'wins / ties / losses | result |',
        '| --- | ---: | ---: | --- | --- | ---: | ---: | --- | ---: | --- '
        '| --- |'
    ]
    for r in rows:
        eq = 'equivalent' if r['equivalent'] else 'not shown equivalent'
        lines.append(f'| {r["other"]} | {r["n"]} | {r["mean"]:+.2f} | '
                     f'[{r["ci_t"][0]:+.2f}, {r["ci_t"][1]:+.2f}] | '
                     f'[{r["ci_boot"][0]:+.2f}, {r["ci_boot"][1]:+.2f}] | '
                     f'{_fmt_p(r["p"])} | {_fmt_p(r["p_holm"])} | '
                     f'[{r["ci_90"][0]:+.2f}, {r["ci_90"][1]:+.2f}] | '
                     f'{_fmt_p(r["p_tost"])} | {r["wins"]} / {r["ties"]} / '
                     f'{r["losses"]} | {r["verdict"]}; {eq} |')
    return lines


def forest_plot(rows: Sequence[Dict],
                primary: str,
                margin: float,
                path: str,
                title: str = '') -> None:
    """Mean paired differences with their 95% t intervals (and 90% ones
    for the equivalence test), the margin drawn at ``+- margin``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(rows) + 1.6))
    for i, r in enumerate(rows):
        y = len(rows) - 1 - i
        ax.plot(r['ci_t'], [y, y], color='C0', lw=1.5)
        ax.plot(r['ci_90'], [y, y], color='C0', lw=4, alpha=0.5)
        ax.plot([r['mean']], [y], 'o', color='k')
    ax.axvline(0, color='k', lw=0.8)
    for x in (-margin, margin):
        ax.axvline(x, color='C3', ls='--', lw=0.8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(
        [f'{primary} - {r["other"]} (n={r["n"]})' for r in reversed(rows)],
        fontsize=8)
    ax.set_xlabel(
        'paired difference in top-1 (points); thin: 95% CI, '
        f'thick: 90% CI; dashed: +-{margin:g}',
        fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.grid(axis='x', alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curves_plot(records: Sequence[RunRecord], order: Sequence[str],
                path: str) -> None:
    """Mean train (augmented batches) and dev top-1 per epoch over seeds,
    one line per variant."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    runs = _by_variant(records)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, name in enumerate(n for n in order if n in runs):
        curves = [r.curve for r in runs[name].values() if r.curve]
        if not curves:
            continue
        for ax, key in zip(axes, ('train_top1', 'dev_top1')):
            epochs = sorted(
                {p['epoch']
                 for c in curves
                 for p in c if key in p})
            means = [
                statistics.mean(p[key] for c in curves for p in c
                                if p['epoch'] == e and key in p)
                for e in epochs
            ]
            ax.plot(epochs, means, label=name, color=f'C{i}')
    for ax, label in zip(axes, ('train top-1 (augmented batches)',
                                'dev top-1 (1 clip, centre crop)')):
        ax.set_xlabel('epoch')
        ax.set_ylabel(f'{label}, %')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_csv(records: Sequence[RunRecord], path: str) -> None:
    """One line per run: variant, seed, commit, dirty, top-1 per split."""
    splits = sorted({s for r in records for s in r.metrics})
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['variant', 'seed', 'commit', 'dirty'] +
                        [f'{s}_top1' for s in splits] + ['seconds'])
        for r in records:
            writer.writerow(
                [r.variant, r.seed, r.commit[:12], r.dirty] +
                [r.metrics.get(s, {}).get('top1', '')
                 for s in splits] + [r.seconds])


def ensure_folder(path: str) -> str:
    os.makedirs(path, exist_ok=True)
    return path


def commits_line(records: Sequence[RunRecord]) -> str:
    """Which commits the runs came from, and whether any tree was dirty."""
    commits = sorted({r.commit[:12] for r in records})
    dirty = sum(1 for r in records if r.dirty)
    line = f'runs from commit(s) {", ".join(f"`{c}`" for c in commits)}'
    if dirty:
        line += f'; **{dirty} run(s) from a tree with uncommitted changes**'
    return line
