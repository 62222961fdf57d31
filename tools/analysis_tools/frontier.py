"""The accuracy-GFLOPs frontier of every reducer, off the shelf (regime c).

Each reducer is inserted, untrained, into trained unmerged models (one per
pre-training seed) at a grid of cost points, fractions of the unmerged
model's GFLOPs, each reducer's ratio set to land on the point
(:func:`~mmaction_sttm.analysis.ratio_for_cost`). Every point is scored with
MMAction2's test pipeline and multi-view test (the recognizer's
``test_step``) on the held-out and the out-of-distribution splits, keeping
every video's prediction. Nothing is trained, so a run is inference only.

The plan (models, splits, grid, reducers, their schedules and readings, the
tests) is a ``protocol.py`` in a config folder, fixed with the study's
``PROTOCOL.md`` before any run. Three commands::

    python tools/analysis_tools/frontier.py plan --config-dir DIR
    python tools/analysis_tools/frontier.py run --config-dir DIR --phase dev \\
        --source WT
    python tools/analysis_tools/frontier.py run --config-dir DIR \\
        --phase test --source WT
    python tools/analysis_tools/frontier.py report --config-dir DIR

- ``plan`` finds each reducer's ratio at each point and writes
  ``plan.json`` in the protocol's ``out`` folder (GFLOPs only: no data);
- ``run --phase dev`` scores every reading of every reducer on the dev
  split; ``run --phase test`` scores the reading each reducer's dev runs
  chose on the held-out splits, and refuses to start before every dev
  record exists. ``--source`` is the folder the protocol's checkpoints and
  data paths are relative to (a worktree at the commit that trained the
  models); each record keeps the checkpoint's SHA-256;
- ``report`` rebuilds every table and figure from the committed records.

A protocol with a ``finetune`` entry is the fine-tuned frontier (regime b):
each point is a fine-tuning run instead (``frontier_finetune.py``).
"""
import argparse
import copy
import hashlib
import json
import os
import os.path as osp
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))

#: Keys a reducer entry of the protocol takes.
REDUCER_KEYS = ('merger', 'max_ratio', 'readings')


@dataclass(frozen=True)
class Reducer:
    """One reducer of the frontier.

    Args:
        name (str): Its name in tables (``'STTM'``).
        merger (dict): The merger type, schedule and fixed options, without
            ``ratio``.
        max_ratio (float): The largest ratio it takes.
        readings (dict): Reading name -> ``dict(merger=..., prop_attn=...)``
            (merger options added to ``merger``; proportional attention);
            the dev runs choose one. One entry when nothing is chosen.
    """
    name: str
    merger: dict
    max_ratio: float
    readings: Dict[str, dict]


@dataclass(frozen=True)
class Protocol:
    """A frontier study's plan, checked at load.

    Args:
        title (str): The study's name.
        out (str): Results folder, relative to the repository.
        model_config (str): The trained models' config (regime b: the
            config every point's fine-tuning starts from).
        data (dict): Split name -> ``(ann_file, video_prefix)``, relative to
            ``--source``; ``dev`` and the held-out ``splits``.
        splits (tuple): The held-out splits the claims are made on.
        seeds (tuple): Pre-training seeds (one trained model each).
        points (tuple): GFLOPs fractions of the unmerged model.
        tolerance (float): Relative GFLOPs miss allowed at a point.
        shape (tuple): One view ``(1, C, T, H, W)`` for the GFLOPs.
        reducers (tuple): :class:`Reducer` entries.
        primary (str): The reducer every other is compared with (STTM).
        floor (str): The content-blind floor (random dropping).
        alpha (float): Family-wise level of each point's tests.
        checkpoint (str, optional): Off the shelf: the trained model's
            checkpoint with ``{seed}``, relative to the run's ``--source``.
        finetune (Finetune, optional): Regime (b): how each point is
            fine-tuned (:class:`frontier_finetune.Finetune`).
    """
    title: str
    out: str
    model_config: str
    data: Dict[str, tuple]
    splits: tuple
    seeds: tuple
    points: tuple
    tolerance: float
    shape: tuple
    reducers: tuple
    primary: str
    floor: str
    alpha: float
    checkpoint: Optional[str] = None
    finetune: Optional[object] = None

    def reducer(self, name: str) -> Reducer:
        return next(r for r in self.reducers if r.name == name)


def load_protocol(config_dir: str) -> Protocol:
    """Read and check ``protocol.py`` of ``config_dir``; a missing or
    unknown key is one line naming it."""
    from mmengine.config import Config
    path = osp.join(config_dir, 'protocol.py')
    raw = Config.fromfile(path).get('protocol')
    if raw is None:
        raise ValueError(f'{path} defines no `protocol` dict')
    raw = raw.to_dict()
    fields = set(Protocol.__dataclass_fields__)
    unknown = sorted(set(raw) - fields)
    missing = sorted(fields - set(raw) - {'checkpoint', 'finetune'})
    if 'finetune' not in raw and 'checkpoint' not in raw:
        missing.append('checkpoint')
    if unknown or missing:
        raise ValueError(f'{path}: unknown keys {unknown}, missing keys '
                         f'{missing}')
    reducers = []
    for name, entry in raw['reducers'].items():
        bad = sorted(set(entry) - set(REDUCER_KEYS))
        if bad or 'merger' not in entry:
            raise ValueError(f'{path}: reducers.{name} takes '
                             f'{REDUCER_KEYS} (merger required), got {bad}')
        readings = entry.get('readings') or {'default': {}}
        reducers.append(
            Reducer(name, dict(entry['merger']),
                    float(entry.get('max_ratio', 0.95)), {
                        k: dict(v)
                        for k, v in readings.items()
                    }))
    raw['reducers'] = tuple(reducers)
    for key in ('splits', 'seeds', 'points', 'shape'):
        raw[key] = tuple(raw[key])
    raw['data'] = {k: tuple(v) for k, v in raw['data'].items()}
    names = [r.name for r in reducers]
    for key in ('primary', 'floor'):
        if raw[key] not in names:
            raise ValueError(f'{path}: {key} {raw[key]!r} is not one of '
                             f'the reducers {names}')
    for split in ('dev', ) + raw['splits']:
        if split not in raw['data']:
            raise ValueError(f'{path}: data has no {split!r} split')
    if raw.get('finetune') is not None:
        sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
        from frontier_finetune import Finetune
        raw['finetune'] = Finetune.from_dict(raw['finetune'], raw['seeds'],
                                             path)
        several = [r.name for r in reducers if len(r.readings) > 1]
        if several:
            raise ValueError(f'{path}: the fine-tuned frontier trains one '
                             f'reading per reducer; {several} name several')
    return Protocol(**raw)


def all_points(protocol: Protocol) -> Tuple[float, ...]:
    """Every point the plan sizes: the grid, and regime (b)'s candidates
    for its deepest point."""
    deep = protocol.finetune.deep_points if protocol.finetune else ()
    return tuple(protocol.points) + tuple(
        p for p in deep if p not in protocol.points)


def _merger(reducer: Reducer, reading: str) -> dict:
    return dict(reducer.merger, **reducer.readings[reading].get('merger', {}))


def _model_cfg(protocol: Protocol):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, protocol.model_config))
    cfg.model.backbone.pop('init_cfg', None)
    return cfg


# -- plan --------------------------------------------------------------------


def make_plan(protocol: Protocol) -> dict:
    """Each reducer's (and reading's) ratio at each point.

    Returns:
        dict: ``baseline_gflops`` and, per reducer and reading, one entry
        per point: ``point``, ``ratio``, ``gflops``, ``fraction``,
        ``counts`` and ``within`` (the tolerance holds).
    """
    from mmaction.utils import register_all_modules

    import mmaction_sttm  # noqa: F401
    from mmaction_sttm.analysis import CostCounter, ratio_for_cost
    from mmaction_sttm.registry import MODELS
    register_all_modules()
    cfg = _model_cfg(protocol)
    counter = CostCounter(cfg.model, protocol.shape, MODELS.build)
    plan = dict(
        baseline_gflops=counter.baseline,
        points=all_points(protocol),
        tolerance=protocol.tolerance,
        reducers={})
    for reducer in protocol.reducers:
        plan['reducers'][reducer.name] = {}
        for reading in reducer.readings:
            entries = []
            for point in all_points(protocol):
                found = ratio_for_cost(counter, _merger(reducer,
                                                        reading), point,
                                       reducer.max_ratio, protocol.tolerance)
                miss = found.fraction / point - 1
                entries.append(
                    dict(
                        point=point,
                        ratio=found.ratio,
                        gflops=round(found.gflops, 7),
                        fraction=round(found.fraction, 5),
                        counts=list(found.counts),
                        within=bool(abs(miss) <= protocol.tolerance)))
            plan['reducers'][reducer.name][reading] = entries
    return plan


# -- run ---------------------------------------------------------------------


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def load_split(cfg, ann_file: str, prefix: str) -> List[dict]:
    """Every batch of a split through the config's test pipeline, once
    (MMAction2's dataset and transforms; MMEngine's dataloader)."""
    from mmengine.runner import Runner
    loader = copy.deepcopy(cfg.test_dataloader)
    loader.dataset.ann_file = ann_file
    loader.dataset.data_prefix = dict(video=prefix)
    loader.num_workers = 0
    loader.persistent_workers = False
    loader.batch_size = 16
    return list(Runner.build_dataloader(loader))


def score(model, batches: Sequence[dict]) -> dict:
    """Multi-view test of ``model`` on cached ``batches``.

    Returns:
        dict: ``top1`` (percent), ``label``, ``pred`` and ``p_true`` (the
        compact per-video predictions of the study runner).
    """
    import torch
    from sttm_study.runner import compact_samples
    samples = []
    model.eval()
    with torch.no_grad():
        for batch in batches:
            samples += [s.to_dict() for s in model.test_step(batch)]
    compact = compact_samples(samples)
    label = np.array(compact['label'].split(), dtype=int)
    pred = np.array(compact['pred'].split(), dtype=int)
    return dict(top1=round(100 * float((label == pred).mean()), 2), **compact)


def chosen_readings(protocol: Protocol, out: str) -> Dict[str, str]:
    """Per reducer, the reading with the highest dev top-1, mean over the
    points and models (ties: the first listed); raises if a dev record is
    missing (regime b: the one reading of each reducer)."""
    if protocol.finetune is not None:
        return {r.name: next(iter(r.readings)) for r in protocol.reducers}
    for reducer in protocol.reducers:
        for reading in reducer.readings:
            for seed in protocol.seeds:
                path = osp.join(out, 'dev', reducer.name, reading,
                                f'seed{seed}.json')
                if not osp.exists(path):
                    raise RuntimeError(f'dev record {path} is missing: run '
                                       f'--phase dev for every seed first')
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
    from frontier_report import dev_choices
    return dev_choices(protocol, out)[0]


def run(protocol: Protocol,
        phase: str,
        source: str,
        seeds: Optional[Sequence[int]] = None,
        resume: bool = True) -> None:
    """Score the plan's points on one phase's splits, one record per
    (reducer, reading, seed)."""
    if protocol.finetune is not None:
        sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
        import frontier_finetune
        frontier_finetune.run(protocol, phase, source, seeds, torch_threads())
        return
    import torch
    from mmaction.utils import register_all_modules
    from sttm_study.runner import git_state, machine_state

    import mmaction_sttm  # noqa: F401
    from mmaction_sttm.engine.checkpoint_loading import load_from_local
    from mmaction_sttm.models import apply_merger
    from mmaction_sttm.registry import MODELS
    register_all_modules()
    out = osp.join(ROOT, protocol.out)
    with open(osp.join(out, 'plan.json')) as f:
        plan = json.load(f)
    if phase == 'dev':
        splits, todo = ('dev', ), {
            r.name: list(r.readings)
            for r in protocol.reducers
        }
    else:
        splits = protocol.splits
        todo = {k: [v] for k, v in chosen_readings(protocol, out).items()}
    state = dict(
        git_state(ROOT, ignore=[protocol.out]), machine=machine_state())
    cfg = _model_cfg(protocol)
    data = {
        s: load_split(cfg, *(osp.join(source, p) for p in protocol.data[s]))
        for s in splits
    }
    for seed in seeds if seeds is not None else protocol.seeds:
        ckpt = osp.join(source, protocol.checkpoint.format(seed=seed))
        base = MODELS.build(cfg.model)
        # The project's loader: torch's weights-only unpickler with
        # MMEngine's checkpoint globals allowed.
        base.load_state_dict(load_from_local(ckpt)['state_dict'])
        digest = _sha256(ckpt)
        head = dict(
            seed=seed,
            checkpoint=protocol.checkpoint.format(seed=seed),
            checkpoint_sha256=digest,
            **state)
        path = osp.join(out, phase, 'baseline', f'seed{seed}.json')
        if not (resume and osp.exists(path)):
            start = time.time()
            record = dict(
                head,
                reducer='baseline',
                splits={s: score(base, data[s])
                        for s in splits})
            record['seconds'] = round(time.time() - start, 1)
            _write(path, record)
        for name, readings in todo.items():
            reducer = protocol.reducer(name)
            for reading in readings:
                path = osp.join(out, phase, name, reading, f'seed{seed}.json')
                if resume and osp.exists(path):
                    continue
                start, points = time.time(), []
                for entry in plan['reducers'][name][reading]:
                    if not entry['within']:
                        continue  # out of the reducer's reach: not scored
                    ratio = entry['ratio']
                    merger = dict(
                        _merger(reducer, reading),
                        ratio=tuple(ratio)
                        if isinstance(ratio, list) else ratio)
                    # STTM's encoder starts from a random init: the same
                    # one for a seed, whatever ran before.
                    with torch.random.fork_rng():
                        torch.manual_seed(seed)
                        model = apply_merger(
                            base,
                            merger,
                            prop_attn=reducer.readings[reading].get(
                                'prop_attn', False))
                    points.append(
                        dict(
                            point=entry['point'],
                            ratio=entry['ratio'],
                            fraction=entry['fraction'],
                            splits={s: score(model, data[s])
                                    for s in splits}))
                record = dict(
                    head,
                    reducer=name,
                    reading=reading,
                    points=points,
                    seconds=round(time.time() - start, 1))
                _write(path, record)
                print(
                    f'{phase} {name}/{reading} seed {seed}: ' +
                    ', '.join(f"{p['point']}: {p['splits'][splits[0]]['top1']}"
                              for p in points),
                    flush=True)


def _write(path: str, record: dict) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(record, f, indent=1)
    os.replace(tmp, path)


# -- command line ------------------------------------------------------------


def torch_threads() -> int:
    """The threads this process's torch uses (and each tool it starts)."""
    import torch
    return torch.get_num_threads()


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('command', choices=('plan', 'run', 'report'))
    parser.add_argument(
        '--config-dir',
        required=True,
        help='the study\'s folder with protocol.py')
    parser.add_argument('--phase', choices=('dev', 'test'), default='dev')
    parser.add_argument(
        '--source',
        default=ROOT,
        help='run: the folder the protocol\'s checkpoint '
        'and data paths are relative to')
    parser.add_argument('--seeds', type=int, nargs='+', default=None)
    parser.add_argument(
        '--threads', type=int, default=None, help='torch CPU threads')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    protocol = load_protocol(args.config_dir)
    out = osp.join(ROOT, protocol.out)
    if args.command == 'plan':
        plan = make_plan(protocol)
        _write(osp.join(out, 'plan.json'), plan)
        for name, readings in plan['reducers'].items():
            for reading, entries in readings.items():
                print(
                    name, reading, ' '.join(f"{e['point']}:{e['fraction']}" +
                                            ('' if e['within'] else '!')
                                            for e in entries))
    elif args.command == 'run':
        if args.threads:
            import torch
            torch.set_num_threads(args.threads)
        run(protocol, args.phase, osp.abspath(args.source), args.seeds)
    else:
        sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
        from frontier_report import write_report
        write_report(protocol, out)


if __name__ == '__main__':
    main()
