"""The record of one study run: the one format every study writes and
every table is rebuilt from.

A run (one variant, one seed) is written as JSON by
:meth:`sttm_study.runner.StudyRunner.run` and committed under a study's
``runs/`` folder. :class:`RunRecord` checks a record when it is loaded: a
missing field, an unknown one or a metric without ``top1`` fails in one
line that names the file. The first exploratory runs wrote ``val_top1`` and
``train_top1`` instead of ``metrics``; they load as the same record.
"""
import glob
import json
import os.path as osp
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Optional

__all__ = ['RecordError', 'RunRecord', 'load_record', 'load_records']


class RecordError(ValueError):
    """A run record that cannot be read (one line, naming the file)."""


@dataclass
class RunRecord:
    """One study run.

    Args:
        variant (str): The variant's name (its config's ``study.name``).
        regime (str): ``'finetune'``, ``'scratch'`` or ``'ots'``.
        seed (int): The run's seed.
        config (str): Its config, relative to the repository.
        commit (str): The commit the run came from.
        dirty (bool): Whether the tree had uncommitted changes.
        metrics (dict): Split (``'train'``, ``'dev'``, ``'test'``,
            ``'shifted'``) -> ``top1``, ``top5`` and, on held-out splits,
            ``predictions`` (:func:`sttm_study.runner.compact_samples`).
        curve (list[dict]): Per epoch: ``epoch``, ``loss``, ``train_top1``
            and, where validated, ``dev_top1``; empty off the shelf.
        seconds (float): Wall-clock time of the run.
        machine (dict): :func:`sttm_study.runner.machine_state` and the
            run's ``threads``.
        commands (list[str]): The commands, relative to the repository.
        block (dict, optional): Set by ``confirm.py harvest``: the runs that
            share one pre-trained backbone, data and machine.
    """
    variant: str
    regime: str
    seed: int
    config: str
    commit: str
    dirty: bool
    metrics: Dict[str, Dict[str, Any]]
    curve: List[Dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    machine: Dict[str, Any] = field(default_factory=dict)
    commands: List[str] = field(default_factory=list)
    block: Optional[Dict[str, Any]] = None

    @classmethod
    def from_dict(cls, values: dict, source: str = 'record') -> 'RunRecord':
        """Check a record's JSON object and build the record.

        Args:
            values (dict): The object.
            source (str): Its file, named in errors.

        Returns:
            RunRecord: The record.

        Raises:
            RecordError: On a missing or unknown field, or a metric
                without ``top1``.
        """
        values = dict(values)
        if 'metrics' not in values and 'val_top1' in values:
            # The first exploratory runs' form.
            values['metrics'] = {
                'dev': dict(top1=values.pop('val_top1')),
                'train': dict(top1=values.pop('train_top1'))
            }
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise RecordError(f'{source}: unknown record field(s) {unknown}')
        required = ('variant', 'regime', 'seed', 'config', 'commit', 'dirty',
                    'metrics')
        missing = [k for k in required if k not in values]
        if missing:
            raise RecordError(
                f'{source}: the record has no {", ".join(missing)}')
        if not isinstance(values['seed'], int):
            raise RecordError(
                f'{source}: seed must be an int, got {values["seed"]!r}')
        for split, metric in values['metrics'].items():
            if not isinstance(metric, dict) or 'top1' not in metric:
                raise RecordError(f'{source}: metrics[{split!r}] has no top1')
        return cls(**values)

    def to_dict(self) -> dict:
        """The JSON object (``block`` only where set)."""
        values = asdict(self)
        if values['block'] is None:
            del values['block']
        return values

    def top1(self, split: str) -> float:
        """Top-1 (%) on ``split``."""
        return self.metrics[split]['top1']

    def has(self, split: str) -> bool:
        """Whether the run was scored on ``split``."""
        return split in self.metrics

    def save(self, path: str) -> None:
        """Write the record as JSON to ``path``."""
        with open(path, 'w') as f:
            json.dump(self.to_dict(), f, indent=1)
            f.write('\n')


def load_record(path: str) -> RunRecord:
    """The checked record of one JSON file.

    Args:
        path (str): The file.

    Returns:
        RunRecord: The record.

    Raises:
        RecordError: If the file is not JSON or not a record.
    """
    try:
        with open(path) as f:
            values = json.load(f)
    except json.JSONDecodeError as err:
        raise RecordError(f'{path}: not JSON ({err})') from None
    if not isinstance(values, dict):
        raise RecordError(f'{path}: a record is a JSON object')
    return RunRecord.from_dict(values, source=path)


def load_records(folder: str) -> List[RunRecord]:
    """Every record under ``folder`` (``<variant>/seed<n>.json``), sorted
    by variant and seed.

    Args:
        folder (str): A study's ``runs`` folder.

    Returns:
        list[RunRecord]: The records; empty if there is none.
    """
    paths = glob.glob(osp.join(folder, '*', 'seed*.json'))
    records = [load_record(p) for p in paths]
    return sorted(records, key=lambda r: (r.variant, r.seed))
