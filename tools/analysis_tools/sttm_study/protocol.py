"""A confirmatory study's plan, as its ``protocol.py`` config writes it.

The words, the reasons and the amendments of a plan are in its
``PROTOCOL.md``; the ``protocol`` dict of its config folder is what the
tools read. :class:`Protocol` checks that dict when it is loaded: an
unknown key (a typo would otherwise leave a default in force), a missing
one or a value of the wrong type fails in one line that names the key and
the file.
"""
import difflib
from dataclasses import MISSING, dataclass, field, fields
from typing import Dict, Optional, Tuple

__all__ = ['Protocol', 'ProtocolError', 'load_protocol']

REGIMES = ('finetune', 'scratch')


class ProtocolError(ValueError):
    """A protocol config that cannot be a plan (one line, naming the key)."""


@dataclass(frozen=True)
class Protocol:
    """A confirmatory study's plan.

    Args:
        baseline (str): The unreduced variant every other is paired with.
        primary (str): The variant the decision rule is about.
        seeds (tuple[int]): The confirmatory runs' seeds.
        train_subset (int): Training videos scored for train top-1.
        margin (float): Equivalence margin of the TOST, in points.
        alpha (float): Significance level of every test.
        half_width (float): The 95% half-width the seed count is sized for.
        title (str): Heading of the report.
        out (str, optional): Results folder, relative to the repository.
        regime (str): ``'finetune'`` (pre-train, then fine-tune) or
            ``'scratch'``.
        data_root (str): The study's data folder (made where missing).
        camera (str): The motion task's camera (``'drift'``, ``'static'``).
        per_class (dict): Videos per class of the ``train`` / ``dev``
            splits, where they differ from the generator's defaults.
        scene (dict, optional): Rendering of the motion task (a shifted
            scene), as :func:`sttm_study.data.make_study_data` takes it.
        variants (tuple[str], optional): The confirmatory variants; None:
            the baseline, the primary and the peers chosen on dev.
        peers (tuple[str]): Peers compared at a fixed reading.
        peer_choices (dict): Peer name -> its readings, one chosen on dev.
        ablations (tuple[str]): Diagnostic variants, scored on dev and
            shifted only.
        comparisons (tuple[dict]): ``dict(primary=..., others=[...])``; none:
            the primary against every other variant.
        dev_seeds (tuple[int]): Seeds of the dev runs that choose readings.
        pretrain_seed (int, optional): One pre-trained backbone for every
            seed; None: each seed pre-trains its own.
        test_per_class (int): Held-out test videos per class.
        shifted_per_class (int): Shifted test videos per class (0: none).
        collapse_margin (float, optional): Points below the baseline of the
            same seed that count as a collapse (reported where set).
        noninferiority (float, optional): Margin of the one-sided
            non-inferiority test (reported where set).
    """
    baseline: str
    primary: str
    seeds: Tuple[int, ...]
    train_subset: int
    margin: float
    alpha: float
    half_width: float
    title: str = 'Confirmatory study'
    out: Optional[str] = None
    regime: str = 'finetune'
    data_root: str = 'data/study'
    camera: str = 'drift'
    per_class: Dict[str, int] = field(default_factory=dict)
    scene: Optional[dict] = None
    variants: Optional[Tuple[str, ...]] = None
    peers: Tuple[str, ...] = ()
    peer_choices: Dict[str, Tuple[str, ...]] = field(default_factory=dict)
    ablations: Tuple[str, ...] = ()
    comparisons: Tuple[dict, ...] = ()
    dev_seeds: Tuple[int, ...] = ()
    pretrain_seed: Optional[int] = None
    test_per_class: int = 0
    shifted_per_class: int = 0
    collapse_margin: Optional[float] = None
    noninferiority: Optional[float] = None

    @classmethod
    def from_dict(cls, values: dict, source: str = 'protocol') -> 'Protocol':
        """Check ``values`` (a config's ``protocol`` dict) and build the plan.

        Args:
            values (dict): The dict.
            source (str): Its file, named in errors.

        Returns:
            Protocol: The plan.

        Raises:
            ProtocolError: On an unknown or missing key, or a wrong value.
        """
        known = {f.name: f for f in fields(cls)}
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ''
                raise ProtocolError(
                    f'{source}: protocol has no key {key!r}{hint}')
        required = [
            name for name, f in known.items()
            if f.default is MISSING and f.default_factory is MISSING
        ]
        missing = [name for name in required if name not in values]
        if missing:
            raise ProtocolError(
                f'{source}: protocol needs {", ".join(missing)}')
        kwargs = {k: _plain(v) for k, v in values.items()}
        for key in ('seeds', 'variants', 'peers', 'ablations', 'dev_seeds',
                    'comparisons'):
            if kwargs.get(key) is not None:
                kwargs[key] = tuple(kwargs[key])
        if 'peer_choices' in kwargs:
            kwargs['peer_choices'] = {
                k: tuple(v)
                for k, v in kwargs['peer_choices'].items()
            }
        protocol = cls(**kwargs)
        protocol._check(source)
        return protocol

    def _check(self, source: str) -> None:

        def fail(message: str) -> None:
            raise ProtocolError(f'{source}: protocol {message}')

        if self.regime not in REGIMES:
            fail(f'regime must be one of {REGIMES}, got {self.regime!r}')
        if not self.seeds or not all(isinstance(s, int) for s in self.seeds):
            fail(f'seeds must be a non-empty list of ints, got {self.seeds}')
        for name in ('margin', 'half_width'):
            if not getattr(self, name) > 0:
                fail(f'{name} must be > 0, got {getattr(self, name)!r}')
        if not 0 < self.alpha < 1:
            fail(f'alpha must be in (0, 1), got {self.alpha!r}')
        for comparison in self.comparisons:
            if not isinstance(comparison, dict) or 'primary' not in \
                    comparison or set(comparison) - {'primary', 'others'}:
                fail('comparisons: each is dict(primary=..., others=[...]),'
                     f' got {comparison!r}')
        if self.variants is not None:
            named = {self.baseline, self.primary} | {
                c['primary']
                for c in self.comparisons
            } | {o
                 for c in self.comparisons
                 for o in c.get('others', ())}
            absent = sorted(named - set(self.variants))
            if absent:
                fail(f'compares {absent}, which are not in its variants')

    def per_class_of(self, split: str) -> int:
        """Held-out videos per class of ``split`` (``'test'`` or
        ``'shifted'``)."""
        return getattr(self, f'{split}_per_class')


def _plain(value):
    """An mmengine ``ConfigDict`` / list as plain Python containers."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def load_protocol(path: str) -> Protocol:
    """The checked plan of a protocol config.

    Args:
        path (str): The ``protocol.py`` (a config with a ``protocol`` dict).

    Returns:
        Protocol: The plan.

    Raises:
        ProtocolError: If the file has no ``protocol`` dict or the dict is
            not a plan.
    """
    from mmengine.config import Config
    values = Config.fromfile(path).get('protocol')
    if values is None:
        raise ProtocolError(f'{path}: no `protocol` dict')
    return Protocol.from_dict(dict(values), source=path)
