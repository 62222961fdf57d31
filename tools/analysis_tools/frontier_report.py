"""Tables and figures of a frontier study, rebuilt from its records alone
(``python tools/analysis_tools/frontier.py report --config-dir DIR``)."""
import glob
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from sttm_study import stats


def _load(out: str, phase: str) -> Dict[Tuple[str, str], Dict[int, dict]]:
    """Records of a phase: ``(reducer, reading) -> {seed: record}``."""
    records: Dict[Tuple[str, str], Dict[int, dict]] = {}
    for path in sorted(
            glob.glob(
                osp.join(out, phase, '**', 'seed*.json'), recursive=True)):
        with open(path) as f:
            record = json.load(f)
        key = (record['reducer'], record.get('reading', ''))
        records.setdefault(key, {})[record['seed']] = record
    return records


def _correct(result: dict) -> np.ndarray:
    label = np.array(result['label'].split(), dtype=int)
    return np.array(result['pred'].split(), dtype=int) == label


def dev_choices(protocol, out: str) -> Tuple[Dict[str, str], List[str]]:
    """The reading each reducer's dev records choose, and a table of the
    dev means (markdown lines)."""
    records = _load(out, 'dev')
    lines = [
        '| reducer | reading | dev top-1, mean over points and '
        'models | models |', '| --- | --- | ---: | ---: |'
    ]
    chosen = {}
    for reducer in protocol.reducers:
        best, best_mean = None, -1.0
        for reading in reducer.readings:
            seeds = records.get((reducer.name, reading), {})
            values = [
                p['splits']['dev']['top1'] for r in seeds.values()
                for p in r['points']
            ]
            if not values:
                continue
            mean = float(np.mean(values))
            lines.append(f'| {reducer.name} | {reading} | {mean:.2f} | '
                         f'{len(seeds)} |')
            if mean > best_mean:
                best, best_mean = reading, mean
        if best is not None:
            chosen[reducer.name] = best
    return chosen, lines


def _fmt(result: stats.PairedResult) -> str:
    return (f'{result.mean:+.2f} [{result.ci[0]:+.2f}, '
            f'{result.ci[1]:+.2f}]')


def _words(name: str,
           other: str,
           result: stats.PairedResult,
           p_adj: float,
           alpha: float,
           backbone: Optional[stats.PairedResult] = None) -> str:
    """The protocol's words: ahead / behind where the Holm-adjusted p is
    below ``alpha`` and, for runs that share backbones (regime b), the
    backbone-level interval excludes 0 too; else no difference shown."""
    clear = backbone is None or backbone.ci[0] > 0 or backbone.ci[1] < 0
    if p_adj < alpha and clear:
        side = 'ahead of' if result.mean > 0 else 'behind'
        return f'{name} {side} {other}'
    return 'no difference shown'


def _by_backbone(diff: np.ndarray, backbones: List[int]) -> stats.PairedResult:
    """The paired t interval over backbones (each backbone's runs averaged
    first): the interval that counts the pre-training seeds' variance."""
    groups = sorted(set(backbones))
    means = np.array(
        [diff[[b == g for b in backbones]].mean() for g in groups])
    return stats.paired_t(means, np.zeros_like(means))


def split_tables(
        protocol,
        plan: dict,
        records,
        split: str,
        chosen: Dict[str, str],
        points: Optional[Sequence[float]] = None) -> Tuple[List[str], dict]:
    """One table per cost point for one held-out split, and the curves.

    Args:
        points (Sequence[float], optional): The points scored on the
            held-out splits. Defaults to the protocol's grid.

    Returns:
        tuple: markdown lines and ``{reducer: [(fraction, mean, lo, hi)]}``
        for the figure.
    """
    seeds = list(protocol.seeds)
    base = records.get(('baseline', ''), {})
    if any(s not in base for s in seeds):
        return [f'Split `{split}`: baseline records missing.'], {}
    base_top = np.array([base[s]['splits'][split]['top1'] for s in seeds])
    lines = [
        f'### Split `{split}`', '',
        f'Unmerged: {base_top.mean():.2f} +- {base_top.std(ddof=1):.2f} '
        f'(GFLOPs {plan["baseline_gflops"]:.5f} per view).', ''
    ]
    curves: Dict[str, list] = {}
    backbones = (
        list(protocol.finetune.backbones)
        if protocol.finetune is not None else None)
    for point in points or protocol.points:
        tops, correct, fractions, train = {}, {}, {}, {}
        for reducer in protocol.reducers:
            reading = chosen.get(reducer.name)
            seed_records = records.get((reducer.name, reading or ''), {})
            found = []
            for s in seeds:
                rec = seed_records.get(s)
                hit = [
                    p for p in (rec or {}).get('points', [])
                    if p['point'] == point
                ]
                found.append(hit[0] if hit else None)
            if any(h is None for h in found):
                continue
            tops[reducer.name] = np.array(
                [h['splits'][split]['top1'] for h in found])
            correct[reducer.name] = np.stack(
                [_correct(h['splits'][split]) for h in found])
            fractions[reducer.name] = found[0]['fraction']
            if 'train' in found[0]['splits']:
                train[reducer.name] = np.mean(
                    [h['splits']['train']['top1'] for h in found])
        if not tops:
            continue
        primary, floor = protocol.primary, protocol.floor
        family = []
        for name in tops:
            if name != primary and primary in tops:
                family.append((name, primary))
        for name in tops:
            if name not in (primary, floor) and floor in tops:
                family.append((name, floor))
        tests = [stats.paired_t(tops[a], tops[b]) for a, b in family]
        adjusted = stats.holm([t.p for t in tests]) if tests else []
        extra = ' train top-1 |' if train else ''
        extra += ' over backbones [95% t] |' if backbones else ''
        lines += [
            f'#### {point:g} of the unmerged GFLOPs '
            f'({100 * (point - 1):+.0f}%)', '',
            '| reducer | reading | GFLOPs fraction | top-1 | minus '
            f'unmerged [95% t CI] |{extra}',
            '| --- | --- | ---: | ---: | ---: |' + ' ---: |' * extra.count('|')
        ]
        for name, top in tops.items():
            diff = stats.paired_t(top, base_top)
            cells = f' {train[name]:.2f} |' if train else ''
            if backbones:
                cells += f' {_fmt(_by_backbone(top - base_top, backbones))} |'
            lines.append(f'| {name} | {chosen.get(name, "")} | '
                         f'{fractions[name]:.3f} | {top.mean():.2f} +- '
                         f'{top.std(ddof=1):.2f} | {_fmt(diff)} |{cells}')
            lo, hi = diff.ci
            curves.setdefault(name, []).append(
                (fractions[name], top.mean(), top.mean() - diff.mean + lo,
                 top.mean() - diff.mean + hi))
        over = ' over backbones [95% t] |' if backbones else ''
        lines += [
            '', '| comparison | difference [95% t CI] | over models '
            f'and videos [95%] |{over} McNemar p (pooled) | Holm p | words |',
            '| --- | ---: | ---: |' + (' ---: |' if backbones else '') +
            ' ---: | ---: | --- |'
        ]
        for (a, b), test, p_adj in zip(family, tests, adjusted):
            boot = stats.two_level_bootstrap_ci(
                correct[a], correct[b], resamples=2000)
            mc = stats.mcnemar(correct[a].reshape(-1), correct[b].reshape(-1))
            backbone = _by_backbone(tops[a] -
                                    tops[b], backbones) if backbones else None
            cell = f' {_fmt(backbone)} |' if backbones else ''
            lines.append(
                f'| {a} minus {b} | {_fmt(test)} | '
                f'[{boot[0]:+.2f}, {boot[1]:+.2f}] |{cell} {mc:.3g} | '
                f'{p_adj:.3g} | '
                f'{_words(a, b, test, p_adj, protocol.alpha, backbone)} |')
        lines.append('')
    lines += breaking_points(curves, base_top.mean(), split)
    return lines, dict(
        curves,
        unmerged=[(1.0, base_top.mean(), base_top.mean(), base_top.mean())])


#: The protocol's descriptive breaking point: the mean top-1 more than this
#: many points below the unmerged model's.
BREAK_MARGIN = 3.0


def breaking_points(curves: dict, unmerged: float, split: str) -> List[str]:
    """Where each reducer first falls more than :data:`BREAK_MARGIN`
    points below the unmerged model (mean over models), going from the
    cheapest cut to the deepest; descriptive, as the protocol says.

    Args:
        curves (dict): ``{reducer: [(fraction, mean, lo, hi)]}``.
        unmerged (float): The unmerged model's mean top-1.
        split (str): The split's name, for the heading.

    Returns:
        list[str]: Markdown lines.
    """
    lines = [
        f'#### Where each reducer first falls more than {BREAK_MARGIN:g} '
        f'points below the unmerged model (`{split}`, descriptive)', '',
        '| reducer | first such point (GFLOPs fraction) | its mean '
        'top-1 | deepest point reached |', '| --- | ---: | ---: | ---: |'
    ]
    for name, points in sorted(curves.items()):
        points = sorted(points, reverse=True)  # from 0.9 down
        fell = next((p for p in points if p[1] < unmerged - BREAK_MARGIN),
                    None)
        lines.append(f'| {name} | ' +
                     ('none' if fell is None else f'{fell[0]:.3f}') + ' | ' +
                     ('' if fell is None else f'{fell[1]:.2f}') +
                     f' | {points[-1][0]:.3f} |')
    return lines + ['']


def _figure(curves: dict, path: str, title: str, unit: str = 'model') -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for name, points in sorted(curves.items()):
        if name == 'unmerged':
            ax.axhline(
                points[0][1], color='black', lw=0.8, ls='--', label='unmerged')
            continue
        points = sorted(points)
        x = [p[0] for p in points]
        ax.plot(x, [p[1] for p in points], marker='o', ms=3, label=name)
        ax.fill_between(
            x, [p[2] for p in points], [p[3] for p in points], alpha=0.15)
    ax.set_xlabel('GFLOPs, fraction of the unmerged model')
    ax.set_ylabel(f'top-1 (%), mean over {unit}s, 95% band')
    ax.set_title(title, fontsize=9)
    ax.invert_xaxis()
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(protocol, out: str) -> None:
    """Rebuild ``dev.md``, ``test.md`` and one figure per held-out split in
    ``out`` from the records."""
    with open(osp.join(out, 'plan.json')) as f:
        plan = json.load(f)
    points = None
    if protocol.finetune is None:
        chosen, dev_lines = dev_choices(protocol, out)
        said = 'Chosen: ' + ', '.join(f'{k} {v}' for k, v in chosen.items())
    else:
        from frontier_finetune import deep_point
        chosen = {r.name: next(iter(r.readings)) for r in protocol.reducers}
        deepest, dev_lines = deep_point(protocol, out)
        points = tuple(protocol.points) + (deepest, )
        said = f'Chosen deepest point: {deepest:g}'
    with open(osp.join(out, 'dev.md'), 'w') as f:
        f.write(f'# {protocol.title}: dev choices\n\n'
                'Rebuilt from the dev records by `python '
                'tools/analysis_tools/frontier.py report`.\n\n' +
                '\n'.join(dev_lines) + f'\n\n{said}\n')
    records = _load(out, 'test')
    unit = 'model' if protocol.finetune is None else 'run'
    lines = [
        f'# {protocol.title}: held-out splits', '',
        'Rebuilt from the records by `python tools/analysis_tools/'
        'frontier.py report`; the plan, tests and words are in '
        '[PROTOCOL.md](PROTOCOL.md). Top-1 mean +- sd over the '
        f'{len(protocol.seeds)} {unit}s; differences paired by {unit}.', ''
    ]
    for split in protocol.splits:
        split_lines, curves = split_tables(protocol, plan, records, split,
                                           chosen, points)
        lines += split_lines
        if curves:
            name = f'frontier_{split}.png'
            _figure(curves, osp.join(out, name), f'{protocol.title}: {split}',
                    unit)
            lines += [f'![{split}]({name})', '']
    with open(osp.join(out, 'test.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
