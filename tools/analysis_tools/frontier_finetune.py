"""The fine-tuned frontier (regime b): each reducer inserted into the
pre-trained backbone and the whole model fine-tuned at each cost point.

``frontier.py run`` comes here when the protocol has a ``finetune`` entry.
Every (reducer, point, seed) is one ``tools/train.py`` run of a config that
the protocol's model config and the plan's merger make (written into the
run's work dir and recorded), then scored in this process with the same
multi-view test as the off-the-shelf frontier (:func:`frontier.score`),
every video's prediction kept. The unmerged model of each seed is
fine-tuned the same way (the ``baseline`` record).

The phases:

- ``dev``: the baseline and the floor reducer (random dropping) at each of
  the protocol's candidate deepest points, on the dev seeds, scored on dev.
  The deepest point scored on the held-out splits is the first candidate
  at which the floor loses at least ``floor_loss`` points on dev (mean over
  the dev seeds), else the last (:func:`deep_point`);
- ``test``: every reducer at the fixed points and that deepest one, on the
  confirmatory seeds, scored on the train subset and the held-out splits.

A run's work dir keeps its ``score.json``; a record (one per reducer,
reading and seed) is written once every point of it is in, so an
interrupted phase resumes where it stopped.
"""
import json
import os
import os.path as osp
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

#: Keys of the protocol's ``finetune`` dict.
FINETUNE_KEYS = ('pretrained', 'backbones', 'train', 'train_subset',
                 'dev_seeds', 'dev_backbones', 'deep_points', 'floor_loss',
                 'work_dir')


@dataclass(frozen=True)
class Finetune:
    """How regime (b) trains each point (the protocol's ``finetune``).

    Args:
        pretrained (str): The pre-trained backbone's checkpoint, with
            ``{backbone}``, relative to the run's ``--source``.
        backbones (tuple[int]): The pre-training seed of each of the
            protocol's ``seeds`` (same order): fine-tuning seeds crossed
            with pre-training seeds.
        train (tuple): ``(ann_file, video_prefix)`` of the training split.
        train_subset (tuple): The same for the training videos scored for
            train top-1.
        dev_seeds (tuple[int]): Seeds of the dev runs.
        dev_backbones (tuple[int]): Their backbones' pre-training seeds.
        deep_points (tuple[float]): Candidates for the deepest point,
            shallowest first.
        floor_loss (float): Points the floor must lose on dev at the
            deepest point.
        work_dir (str): Where runs keep their work dirs (under the repo).
    """
    pretrained: str
    backbones: Tuple[int, ...]
    train: tuple
    train_subset: tuple
    dev_seeds: Tuple[int, ...]
    dev_backbones: Tuple[int, ...]
    deep_points: Tuple[float, ...]
    floor_loss: float
    work_dir: str

    @classmethod
    def from_dict(cls, raw: dict, seeds: Sequence[int],
                  source: str) -> 'Finetune':
        """Check the protocol's ``finetune`` dict; one line names a wrong
        key or a length that does not match."""
        unknown = sorted(set(raw) - set(FINETUNE_KEYS))
        missing = sorted(set(FINETUNE_KEYS) - set(raw))
        if unknown or missing:
            raise ValueError(f'{source}: finetune has unknown keys '
                             f'{unknown}, missing keys {missing}')
        values = {
            k: tuple(v) if isinstance(v, (list, tuple)) else v
            for k, v in raw.items()
        }
        if len(values['backbones']) != len(seeds):
            raise ValueError(f'{source}: finetune.backbones has '
                             f'{len(values["backbones"])} entries for '
                             f'{len(seeds)} seeds')
        if len(values['dev_backbones']) != len(values['dev_seeds']):
            raise ValueError(f'{source}: finetune.dev_backbones and '
                             'dev_seeds differ in length')
        return cls(**values)

    def backbone_of(self, seeds: Sequence[int], seed: int) -> int:
        """The pre-training seed of ``seed``'s backbone."""
        pairs = dict(zip(seeds, self.backbones))
        pairs.update(zip(self.dev_seeds, self.dev_backbones))
        return pairs[seed]


def deep_point(protocol, out: str) -> Tuple[float, List[str]]:
    """The deepest point the dev runs choose, and the dev table.

    Returns:
        tuple: The point, and markdown lines of the floor's dev loss at each
        candidate.

    Raises:
        RuntimeError: If a dev record is missing.
    """
    ft = protocol.finetune
    base, floor = {}, {}
    for seed in ft.dev_seeds:
        for name, into in (('baseline', base), (protocol.floor, floor)):
            reading = '' if name == 'baseline' else next(
                iter(protocol.reducer(name).readings))
            path = osp.join(out, 'dev', name, reading, f'seed{seed}.json')
            if not osp.exists(path):
                raise RuntimeError(f'dev record {path} is missing: run '
                                   '--phase dev first')
            with open(path) as f:
                into[seed] = json.load(f)
    lines = [
        f'| point | {protocol.floor} minus unmerged on dev, per seed | '
        'mean |', '| ---: | --- | ---: |'
    ]
    chosen = None
    for point in ft.deep_points:
        losses = []
        for seed in ft.dev_seeds:
            hit = [p for p in floor[seed]['points'] if p['point'] == point]
            if hit:
                losses.append(hit[0]['splits']['dev']['top1'] -
                              base[seed]['splits']['dev']['top1'])
        if len(losses) < len(ft.dev_seeds):
            lines.append(f'| {point:g} | out of reach | |')
            continue
        mean = float(np.mean(losses))
        lines.append(f'| {point:g} | ' + ', '.join(f'{v:+.1f}'
                                                   for v in losses) +
                     f' | {mean:+.2f} |')
        if chosen is None and -mean >= ft.floor_loss:
            chosen = point
        last = point
    if chosen is None:
        chosen = last
    return chosen, lines


def held_out_points(protocol, out: str) -> Tuple[float, ...]:
    """The points scored on the held-out splits: the fixed ones and the
    deepest the dev runs chose."""
    return tuple(protocol.points) + (deep_point(protocol, out)[0], )


def write_config(protocol, merger: Optional[dict], prop_attn: bool,
                 path: str) -> None:
    """The model config with ``merger`` in its backbone, as a file."""
    from mmengine.config import Config
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
    from frontier import ROOT
    cfg = Config.fromfile(osp.join(ROOT, protocol.model_config))
    if merger is not None:
        cfg.model.backbone.merger = merger
        cfg.model.backbone.prop_attn = prop_attn
    os.makedirs(osp.dirname(path), exist_ok=True)
    cfg.dump(path)


def train_and_score(protocol, source: str, work_dir: str, config: str,
                    seed: int, data: Dict[str, list], threads: int) -> dict:
    """Fine-tune one run (``tools/train.py``) and score it on ``data``'s
    splits; reuses the run's ``score.json`` where it exists."""
    import torch
    from mmengine.config import Config
    from sttm_study.runner import call_tool

    from mmaction_sttm.engine.checkpoint_loading import load_from_local
    from mmaction_sttm.registry import MODELS
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
    from frontier import ROOT, score
    done = osp.join(work_dir, 'score.json')
    if osp.exists(done):
        with open(done) as f:
            return json.load(f)
    ft = protocol.finetune
    start = time.time()
    backbone = ft.backbone_of(protocol.seeds, seed)

    def at(path: str) -> str:
        return osp.join(source, path)

    train, dev = ft.train, protocol.data['dev']
    options = {
        'model.backbone.init_cfg.checkpoint':
        at(ft.pretrained.format(backbone=backbone)),
        'train_dataloader.dataset.ann_file':
        at(train[0]),
        'train_dataloader.dataset.data_prefix.video':
        at(train[1]),
        'val_dataloader.dataset.ann_file':
        at(dev[0]),
        'val_dataloader.dataset.data_prefix.video':
        at(dev[1]),
        'test_dataloader.dataset.ann_file':
        at(dev[0]),
        'test_dataloader.dataset.data_prefix.video':
        at(dev[1]),
    }
    cmd = [
        sys.executable, 'tools/train.py', config, '--work-dir', work_dir,
        '--seed',
        str(seed), '--deterministic', '--cfg-options'
    ] + [f'{k}={v}' for k, v in options.items()]
    recorded = call_tool(cmd, osp.join(work_dir, 'train.log'), ROOT,
                         threads).replace(source + os.sep, '$SOURCE/').replace(
                             ROOT + os.sep, '')
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    cfg = Config.fromfile(config)
    cfg.model.backbone.pop('init_cfg', None)
    model = MODELS.build(cfg.model)
    model.load_state_dict(load_from_local(ckpt)['state_dict'])
    with torch.no_grad():
        scores = {
            split: score(model, batches)
            for split, batches in data.items()
        }
    result = dict(
        backbone=backbone,
        command=recorded,
        splits=scores,
        seconds=round(time.time() - start, 1))
    with open(done + '.tmp', 'w') as f:
        json.dump(result, f)
    os.replace(done + '.tmp', done)
    return result


def run(protocol,
        phase: str,
        source: str,
        seeds: Optional[Sequence[int]] = None,
        threads: int = 1) -> None:
    """Fine-tune and score one phase, one record per (reducer, reading,
    seed); see the module's docstring."""
    from mmaction.utils import register_all_modules
    from sttm_study.runner import git_state, machine_state

    import mmaction_sttm  # noqa: F401
    sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
    from frontier import ROOT, _merger, _model_cfg, _write, load_split
    register_all_modules()
    ft = protocol.finetune
    out = osp.join(ROOT, protocol.out)
    with open(osp.join(out, 'plan.json')) as f:
        plan = json.load(f)
    if phase == 'dev':
        splits = ('dev', )
        points = ft.deep_points
        todo = [protocol.reducer(protocol.floor)]
        seeds = ft.dev_seeds if seeds is None else seeds
    else:
        splits = ('train', ) + tuple(protocol.splits)
        points = held_out_points(protocol, out)
        todo = list(protocol.reducers)
        seeds = protocol.seeds if seeds is None else seeds
    state = dict(
        git_state(ROOT, ignore=[protocol.out]), machine=machine_state())
    cfg = _model_cfg(protocol)
    paths = dict(protocol.data, train=ft.train_subset)
    data = {
        s: load_split(cfg, *(osp.join(source, p) for p in paths[s]))
        for s in splits
    }
    work_root = osp.join(ROOT, ft.work_dir, phase)

    def one(name: str, point, merger, prop_attn, seed) -> dict:
        wd = osp.join(work_root, name, str(point), f'seed{seed}')
        config = osp.join(wd, 'config.py')
        if not osp.exists(config):
            write_config(protocol, merger, prop_attn, config)
        return train_and_score(protocol, source, wd, config, seed, data,
                               threads)

    for seed in seeds:
        head = dict(
            seed=seed,
            backbone=ft.backbone_of(protocol.seeds, seed),
            pretrained=ft.pretrained.format(
                backbone=ft.backbone_of(protocol.seeds, seed)),
            **state)
        path = osp.join(out, phase, 'baseline', f'seed{seed}.json')
        if not osp.exists(path):
            result = one('baseline', 1.0, None, False, seed)
            _write(
                path,
                dict(
                    head,
                    reducer='baseline',
                    splits=result['splits'],
                    command=result['command'],
                    seconds=result['seconds']))
        for reducer in todo:
            (reading, ) = reducer.readings  # regime (b): one reading each
            path = osp.join(out, phase, reducer.name, reading,
                            f'seed{seed}.json')
            if osp.exists(path):
                continue
            entries = {
                e['point']: e
                for e in plan['reducers'][reducer.name][reading]
            }
            results = []
            for point in points:
                entry = entries[point]
                if not entry['within']:
                    continue  # out of the reducer's reach: not trained
                ratio = entry['ratio']
                merger = dict(
                    _merger(reducer, reading),
                    ratio=tuple(ratio) if isinstance(ratio, list) else ratio)
                result = one(reducer.name, point, merger,
                             reducer.readings[reading].get('prop_attn',
                                                           False), seed)
                results.append(
                    dict(
                        point=point,
                        ratio=ratio,
                        fraction=entry['fraction'],
                        splits=result['splits'],
                        command=result['command'],
                        seconds=result['seconds']))
                print(
                    f'{phase} {reducer.name} {point} seed {seed}: ' +
                    ', '.join(f'{s} {v["top1"]}'
                              for s, v in result['splits'].items()),
                    flush=True)
            _write(
                path,
                dict(
                    head,
                    reducer=reducer.name,
                    reading=reading,
                    points=results))
