"""The confirmatory study (``tools/analysis_tools/confirm.py``): its runs on
one clean commit, their records, and every table and plot rebuilt from those
records alone.

Records live in ``OUT/dev/runs/VARIANT/seedN.json`` (runs on the dev split,
where choices are made) and ``OUT/test/runs/VARIANT/seedN.json`` (the
confirmatory runs, also tested on the held-out test split).
"""
import glob
import hashlib
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence

from mmaction_sttm.generators import MOTIONS
from . import report, stats
from .data import PER_CLASS, StudyData, make_study_data
from .protocol import Protocol
from .records import RunRecord, load_record, load_records
from .runner import StudyRunner, git_state, machine_state
from .variants import count_complexity, load_variants, variant_has_reducer


class DirtyTreeError(RuntimeError):
    """Confirmatory runs asked for on a tree with uncommitted changes."""


def _records_dir(out: str, stage: str) -> str:
    return osp.join(out, stage, 'runs')


def choose_peers(dev_records: Sequence[RunRecord], protocol: Protocol) -> Dict:
    """The protocol's peers, each multi-reading peer at its best reading
    on the dev split.

    For each entry of ``protocol.peer_choices``, the reading with the
    highest mean dev top-1 over ``protocol.dev_seeds`` (ties: the first
    listed). Every reading must have run every dev seed.

    Args:
        dev_records (Sequence[RunRecord]): Records of the dev runs.
        protocol (Protocol): The plan.

    Returns:
        dict: ``peers`` (the list compared on the test split) and
        ``choices`` (per peer, each reading's mean dev top-1).
    """
    seeds = set(protocol.dev_seeds)
    top1: Dict[str, Dict[int, float]] = {}
    for r in dev_records:
        top1.setdefault(r.variant, {})[r.seed] = \
            r.top1('dev')
    peers, choices = list(protocol.peers), {}
    for peer, readings in protocol.peer_choices.items():
        means = {}
        for name in readings:
            missing = seeds - set(top1.get(name, {}))
            if missing:
                raise ValueError(
                    f'{peer}: reading {name!r} has no dev run for seed(s) '
                    f'{sorted(missing)}; run `confirm.py dev --variants '
                    f'{name} --seeds {" ".join(map(str, sorted(missing)))}` '
                    'first')
            means[name] = sum(top1[name][s] for s in seeds) / len(seeds)
        best = max(readings, key=lambda n: (means[n], -readings.index(n)))
        peers.append(best)
        choices[peer] = means
    return dict(peers=peers, choices=choices)


def study_data(root: str,
               protocol: Protocol,
               data_root: Optional[str] = None,
               smoke: bool = False,
               test_per_class: int = 0,
               shifted_per_class: int = 0) -> StudyData:
    """The protocol's data (made where missing): its ``data_root`` unless
    ``data_root`` is given, with the motion task's ``camera``, ``per_class``
    sizes and ``scene`` (generator settings of the motion task); the shape
    task only where the study pre-trains.

    Args:
        root (str): The repository root.
        protocol (Protocol): The plan.
        data_root (str, optional): Overrides the protocol's folder
            (relative to ``root`` or absolute).
        smoke (bool): Tiny data for seconds-long runs.
        test_per_class (int): Held-out test videos per class (0: none).
        shifted_per_class (int): Shifted test videos per class (0: none).

    Returns:
        StudyData: The roots.
    """
    folder = data_root or protocol.data_root
    return make_study_data(
        osp.join(root, folder),
        smoke,
        test_per_class=test_per_class,
        shifted_per_class=shifted_per_class,
        camera=protocol.camera,
        per_class=protocol.per_class or None,
        shape=protocol.regime == 'finetune',
        scene=protocol.scene)


def eval_splits(protocol: Protocol, stage: str, variant: str) -> tuple:
    """The splits a run of ``variant`` is scored on (besides the train
    subset): dev alone in the dev stage; in the confirmatory stage dev and
    the held-out test split, plus the shifted split where the protocol
    makes one (``shifted_per_class``). The protocol's ``ablations`` are
    diagnostic: dev and shifted only, so the held-out test split stays
    untouched by them."""
    if stage != 'test':
        return ('dev', )
    shifted = ('shifted', ) if protocol.shifted_per_class else ()
    if variant in protocol.ablations:
        return ('dev', ) + shifted
    return ('dev', 'test') + shifted


def run(root: str, config_dir: str, args, protocol: Protocol,
        stage: str) -> None:
    """Run (variant, seed) pairs and copy each record into the results.

    Args:
        root (str): The repository root.
        config_dir (str): The study's configs, relative to ``root``.
        args: The tool's arguments (``out``, ``variants``, ``seeds``,
            ``jobs``, ``resume``, ``allow_dirty``, ``data_root``,
            ``work_dir``, ``smoke``).
        protocol (Protocol): The plan.
        stage (str): ``'dev'`` or ``'test'`` (the confirmatory runs).
    """
    results = osp.join(root, args.out)
    inside = not osp.relpath(results, root).startswith('..')
    state = git_state(
        root, ignore=[osp.relpath(results, root)] if inside else [])
    if state['dirty'] and not args.allow_dirty:
        raise DirtyTreeError(
            'the tree has uncommitted changes; confirmatory runs '
            'come from one clean commit (commit first, or pass '
            '--allow-dirty to run anyway with every record marked dirty)')
    names = args.variants
    if stage == 'test' and names is None:
        names = protocol.variants
    if stage == 'test' and names is None:
        chosen = choose_peers(
            load_records(_records_dir(results, 'dev')), protocol)
        names = [protocol.baseline, protocol.primary] + \
            chosen['peers']
    variants = load_variants(root, config_dir, [protocol.regime], names)
    seeds = args.seeds if args.seeds is not None else protocol.seeds

    def per_class(split: str) -> int:
        """Videos per class of a held-out split (one in a smoke run)."""
        count = protocol.per_class_of(split) if stage == 'test' \
            else 0
        return min(count, 1) if args.smoke else count

    data = study_data(
        root,
        protocol,
        args.data_root,
        args.smoke,
        test_per_class=per_class('test'),
        shifted_per_class=per_class('shifted'))
    runner = StudyRunner(
        root,
        config_dir,
        data,
        osp.join(root, args.work_dir, stage),
        jobs=args.jobs,
        eval_splits=('dev', 'test') if stage == 'test' else ('dev', ),
        resume=args.resume,
        commit=state,
        cfg_options={'train_cfg.max_epochs': 1} if args.smoke else None,
        pretrain_seed=protocol.pretrain_seed)
    jobs = [(v, s) for s in seeds for v in variants]

    def one(job):
        variant, seed = job
        record = runner.run(
            variant, seed, splits=eval_splits(protocol, stage, variant.name))
        folder = report.ensure_folder(
            osp.join(_records_dir(results, stage), variant.name))
        record.save(osp.join(folder, f'seed{seed}.json'))
        return record

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        if protocol.regime == 'finetune':
            list(
                pool.map(
                    runner.pretrain, seeds if runner.pretrain_seed is None else
                    [runner.pretrain_seed]))
        list(pool.map(one, jobs))


def sha256_of(path: str) -> str:
    """SHA-256 of a file, or of a folder's files (their relative paths and
    contents, in sorted order).

    Args:
        path (str): A file or a folder.

    Returns:
        str: The hex digest.
    """
    digest = hashlib.sha256()
    if osp.isfile(path):
        files = [path]
    else:
        files = sorted(
            p for p in glob.glob(osp.join(path, '**', '*'), recursive=True)
            if osp.isfile(p))
        if not files:
            raise FileNotFoundError(f'{path}: no files to hash')
    for name in files:
        if name != path:
            digest.update(osp.relpath(name, path).encode() + b'\0')
        with open(name, 'rb') as f:
            for chunk in iter(lambda: f.read(1 << 20), b''):
                digest.update(chunk)
    return digest.hexdigest()


def harvest(source: str, out: str, stage: str, block: str, pretrain: str,
            data: str) -> List[str]:
    """Copy the records of runs made in another checkout (a worktree at the
    study's commit) into ``out``, each marked with its block.

    A block is the runs that share one pre-trained backbone, one data
    folder and one machine: the record gets ``block`` = ``id``,
    ``pretrain_sha256``, ``data_sha256`` and ``machine``. Records already in
    ``out`` are never overwritten (a rerun of a seed is another block's
    business, decided by an amendment), and a seed is copied only when
    every variant has run it (all of a seed's runs come from one block).
    ``machine`` is this machine's: harvest on the machine that ran them.

    Args:
        source (str): The other checkout's results folder (its ``out``).
        out (str): This checkout's results folder.
        stage (str): ``'dev'`` or ``'test'``.
        block (str): The block's name.
        pretrain (str): The pre-trained checkpoint those runs started from.
        data (str): The data folder they trained and were tested on.

    Returns:
        list[str]: The records written.
    """
    mark = dict(
        id=block,
        pretrain_sha256=sha256_of(pretrain),
        data_sha256=sha256_of(data),
        machine=machine_state())
    written = []
    src_dir, out_dir = _records_dir(source, stage), _records_dir(out, stage)
    paths = sorted(glob.glob(osp.join(src_dir, '*', 'seed*.json')))
    variants = {osp.basename(osp.dirname(p))
                for p in paths} | {
                    osp.basename(osp.dirname(p))
                    for p in glob.glob(osp.join(out_dir, '*', 'seed*.json'))
                }

    def complete(seed_file: str) -> bool:
        return all(
            osp.exists(osp.join(src_dir, v, seed_file)) for v in variants)

    for path in paths:
        if not complete(osp.basename(path)):
            continue  # a seed's variants all come from one block
        target = osp.join(out_dir, osp.relpath(path, src_dir))
        if osp.exists(target):
            continue
        record = load_record(path)
        if record.block is not None and record.block['id'] != block:
            raise ValueError(f'{path}: already marked block '
                             f'{record.block["id"]!r}, not {block!r}')
        record.block = mark
        report.ensure_folder(osp.dirname(target))
        record.save(target + '.part')
        os.replace(target + '.part', target)
        written.append(target)
    return written


def _gflops(root: str, config_dir: str, names: List[str],
            protocol: Protocol) -> Dict[str, float]:
    """GFLOPs per view of each variant; a reducer's (RLT) as the mean over
    the dev split's videos (the data is made first where missing)."""
    out, dev = {}, None
    for variant in load_variants(root, config_dir, [protocol.regime], names):
        if dev is None and variant_has_reducer(root, variant):
            dev = study_data(root, protocol).lists('dev')
        count_complexity(root, variant, videos=dev)
        out[variant.name] = variant.gflops
    return out


def write_report(root: str,
                 config_dir: str,
                 out: str,
                 protocol: Protocol,
                 gflops: Optional[Dict[str, float]] = None) -> List[str]:
    """Every table and plot of the study, from the committed records.

    Args:
        root (str): The repository root.
        config_dir (str): The study's configs, relative to ``root``.
        out (str): The results folder, relative to ``root``.
        protocol (Protocol): The plan.
        gflops (dict, optional): GFLOPs per view of each variant; counted
            from the configs when not given.

    Returns:
        list[str]: The markdown files written.
    """
    folder = osp.join(root, out)
    written = []
    base, primary = protocol.baseline, protocol.primary
    for stage in ('dev', 'test'):
        records = load_records(_records_dir(folder, stage))
        if not records:
            continue
        names = sorted({r.variant
                        for r in records},
                       key=lambda n: (n != base, n != primary, n))
        # The baseline's GFLOPs are the reference even before it has run.
        counted = gflops or _gflops(root, config_dir,
                                    sorted(set(names) | {base}), protocol)
        shifted = ('shifted', ) if protocol.shifted_per_class else ()
        splits = ('train', 'dev', 'test') + shifted if stage == 'test' \
            else ('train', 'dev')
        split = 'test' if stage == 'test' else 'dev'
        dev_videos = 10 * {**PER_CLASS, **protocol.per_class}['dev']
        lines = [
            f'# {protocol.title}: {stage} runs', '',
            f'Written by `python tools/analysis_tools/confirm.py report` from '
            f'the records in [{stage}/runs]({stage}/runs) '
            f'({report.commits_line(records)}). Top-1 in %, mean +- sd over '
            f'seeds; train on {protocol.train_subset} training videos, '
            f'dev on the {dev_videos}-video dev split, test on the held-out '
            'split, '
            f'each 1 clip x 3 crops. The protocol: '
            f'[PROTOCOL.md](PROTOCOL.md).', ''
        ] + (_interim(records, protocol) if stage == 'test' else []) + [
            '## Variants', ''
        ] + report.variant_table(records, counted, base, names, splits)
        if protocol.collapse_margin is not None:
            lines += [
                '', '## Robustness over seeds', '',
                'Per split: mean +- sd over seeds, the worst seed, the '
                'mean paired difference to the baseline of the same seed, '
                'and collapses: seeds more than '
                f'{protocol.collapse_margin:g} points below that '
                'baseline.', ''
            ] + report.robustness_table(records, base, names, splits[1:],
                                        protocol.collapse_margin)
        ablations = [a for a in protocol.ablations if a in names]
        if stage == 'test' and ablations:
            on = ('dev', ) + shifted
            lines += [
                '', f'## Ablations: each minus {primary} (paired)', '',
                'Diagnostic (the protocol\'s phase 2): scored on dev and '
                'shifted only, paired with the primary on the seeds the '
                'ablation ran.', ''
            ] + report.ablation_table(records, primary, ablations, on)
            if {'vit-12e', f'{primary}-12e'} <= set(ablations):
                lines += [
                    '', 'At 12 epochs, STTM against the ViT at 12 '
                    'epochs:', ''
                ] + report.ablation_table(records, 'vit-12e',
                                          [f'{primary}-12e'], on)
        short = [
            MOTIONS[c][0].replace('moving ', '').replace('turning ', '')
            for c in range(10)
        ]
        for on in ('test', ) + shifted if stage == 'test' else ():
            table = report.class_table(records, names, on, short)
            if table:
                lines += [
                    '', f'## Top-1 per class ({on}, mean over seeds)', ''
                ] + table
        comparisons = protocol.comparisons or [dict(primary=primary)]
        for on in (split, ) + (shifted if stage == 'test' else ()):
            for number, comparison in enumerate(comparisons):
                suffix = ('' if on == split else f'_{on}') + \
                    (str(number) if number else '')
                lines += _comparison(records, names, comparison, on, protocol,
                                     folder, stage,
                                     f'{stage}_forest{suffix}.png')
        report.curves_plot(records, names,
                           osp.join(folder, f'{stage}_curves.png'))
        lines += [
            '', '## Learning curves (mean over seeds)', '',
            f'![learning curves]({stage}_curves.png)'
        ]
        report.write_csv(records, osp.join(folder, f'{stage}_runs.csv'))
        with open(osp.join(folder, f'{stage}.md'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
        written.append(osp.join(out, f'{stage}.md'))
    return written


def _interim(records: Sequence[RunRecord], protocol: Protocol) -> List[str]:
    """A warning above the tables while any of the protocol's (variant,
    seed) runs is missing; nothing when all are in."""
    seeds = set(protocol.seeds)
    # The baseline, the primary, the fixed peers and one reading of each
    # peer chosen on dev (or the protocol's own list).
    count = len(protocol.variants or []) or (2 + len(protocol.peers) +
                                             len(protocol.peer_choices))
    listed = set(protocol.variants or [])
    done = len({(r.variant, r.seed)
                for r in records
                if r.seed in seeds and (not listed or r.variant in listed)})
    if done >= count * len(seeds):
        return []
    return [
        f'**Interim: {done} of the protocol\'s {count * len(seeds)} '
        f'runs ({count} variants x {len(seeds)} seeds). The protocol '
        'makes its claims from all of them; nothing below is a result of '
        'the study yet.**', ''
    ]


def _comparison(records: Sequence[RunRecord], names: Sequence[str],
                comparison: Dict, split: str, protocol: Protocol, folder: str,
                stage: str, plot: str) -> List[str]:
    """The section of one comparison: ``comparison['primary']`` against
    each of ``comparison['others']`` (default: every other variant), paired
    by seed, when every one of them has more than one seed."""
    primary = comparison['primary']
    others = [
        n for n in comparison.get('others') or names
        if n != primary and n in names
    ]
    seeds = {n: {r.seed for r in records if r.variant == n} for n in names}
    if primary not in names or not others or any(
            len(seeds[n]) < 2 for n in [primary] + others):
        return []
    margin, alpha = protocol.margin, protocol.alpha
    rows = report.compare(records, primary, others, split, margin, alpha)
    lines = [
        '', f'## {primary} against each variant, paired by seed '
        f'({split} top-1)', '',
        f'Holm adjustment over the {len(rows)} comparisons; TOST: '
        f'equivalence within +-{margin:g} points at level {alpha} '
        '(the 90% interval inside the margin).', ''
    ] + report.comparison_table(rows, primary, margin)
    if protocol.noninferiority:
        lines += _noninferiority(records, primary, rows, split,
                                 protocol.noninferiority, protocol.alpha)
    sds = {r['other']: r['sd'] for r in rows}
    need = {
        o: stats.seeds_needed(sd, protocol.half_width)
        for o, sd in sds.items()
    }
    lines += [
        '', '### Seeds for a 95% interval of +-'
        f'{protocol.half_width:g} points', '',
        '| difference | sd over seeds | seeds needed |',
        '| --- | ---: | ---: |'
    ] + [f'| {primary} - {o} | {sds[o]:.2f} | {need[o]} |' for o in others]
    report.forest_plot(rows, primary, margin, osp.join(folder, plot),
                       f'{stage} split, paired over seeds')
    lines += [
        '', f'![forest plot]({plot})', '',
        f'### {primary} minus each variant, seed by seed ({split} '
        'top-1)', '',
        'A block is a set of runs that share one pre-trained backbone '
        'and one machine (see PROTOCOL.md, amendments); every seed\'s '
        'variants ran in one block, so each difference is paired '
        'within it.', ''
    ] + report.per_seed_table(records, primary, others, split)
    return lines


def _noninferiority(records: Sequence[RunRecord], primary: str,
                    rows: Sequence[Dict], split: str, margin: float,
                    alpha: float) -> List[str]:
    """Lines of the one-sided non-inferiority test of ``primary`` against
    each compared variant (a protocol's ``noninferiority`` margin; marked
    as not pre-registered where an amendment added it)."""
    runs: Dict[str, Dict[int, float]] = {}
    for r in records:
        if r.has(split):
            runs.setdefault(r.variant, {})[r.seed] = \
                r.top1(split)
    lines = [
        '', f'Non-inferiority (one-sided paired t, margin {margin:g} '
        f'points, level {alpha}; added by an amendment, not '
        'pre-registered):', '',
        f'| {primary} minus | one-sided {1 - alpha:.0%} lower bound | '
        'p | result |', '| --- | ---: | ---: | --- |'
    ]
    for row in rows:
        seeds = row['seeds']
        a = [runs[primary][s] for s in seeds]
        b = [runs[row['other']][s] for s in seeds]
        p = stats.noninferiority(a, b, margin)
        verdict = f'not worse by {margin:g} or more' if p < alpha else \
            'non-inferiority not shown'
        lines.append(f'| {row["other"]} | {row["ci_90"][0]:+.2f} | '
                     f'{report._fmt_p(p)} | {verdict} |')
    return lines
