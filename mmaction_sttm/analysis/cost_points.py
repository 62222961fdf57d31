"""The merge ratio that puts a reducer at a given GFLOPs: cost points.

Comparing reducers at equal cost means giving each the ratio at which the
model costs the same. :func:`ratio_for_cost` finds it for any merger and
schedule by bisection on the ratio (GFLOPs fall as the ratio rises), counting
with :func:`~mmaction_sttm.analysis.complexity.complexity`. A model's GFLOPs
depend on the ratio only through the token counts after each merge, which
are whole numbers, so many ratios share one figure: each distinct plan of
counts is traced once.
"""
import copy
from typing import Any, Callable, Dict, NamedTuple, Sequence, Tuple

import torch

from .complexity import complexity


class CostPoint(NamedTuple):
    """Where a ratio puts a model.

    Args:
        ratio (float | tuple): The merger's ratio: one for every merge
            layer, or one per layer.
        gflops (float): GFLOPs of one view at that ratio.
        fraction (float): ``gflops`` over the unmerged model's.
        counts (tuple): Tokens after each merge.
    """
    ratio: Any
    gflops: float
    fraction: float
    counts: Tuple[int, ...]


class CostCounter:
    """GFLOPs of a recognizer config with a given merger, counted once per
    plan of token counts.

    Args:
        model_cfg (dict): The recognizer's config without a merger (an
            ``mmengine`` ``ConfigDict`` or dict); ``backbone.merger`` is set
            per call.
        shape (Sequence[int]): One view ``(1, C, T, H, W)``.
        build (Callable): Builds a model from a config (the registry's
            ``MODELS.build``).
    """

    def __init__(self, model_cfg: Any, shape: Sequence[int],
                 build: Callable[[Any], torch.nn.Module]) -> None:
        self.model_cfg = model_cfg
        self.shape = tuple(shape)
        self.build = build
        self._by_counts: Dict[tuple, float] = {}
        self.baseline = self._flops(None)[0]

    def _flops(self, merger: Any) -> Tuple[float, Tuple[int, ...]]:
        cfg = copy.deepcopy(self.model_cfg)
        cfg['backbone']['merger'] = merger
        model = self.build(cfg)
        schedule = getattr(model.backbone, 'merge_schedule', None)
        counts = tuple(schedule.counts) if schedule is not None else ()
        key = (str(merger.get('type')) if merger else None, ) + counts
        if key not in self._by_counts:
            self._by_counts[key] = complexity(model, self.shape)['flops'] / 1e9
        return self._by_counts[key], counts

    def at(self, merger: dict, ratio: Any) -> CostPoint:
        """The cost of ``merger`` with ``ratio`` (one for every merge
        layer, or a tuple with one per layer)."""
        ratio = tuple(
            float(r)
            for r in ratio) if isinstance(ratio,
                                          (tuple, list)) else float(ratio)
        gflops, counts = self._flops(dict(merger, ratio=ratio))
        return CostPoint(ratio, gflops, gflops / self.baseline, counts)


def _bisect(at: Callable[[float], CostPoint], fraction: float,
            min_ratio: float, max_ratio: float, steps: int) -> CostPoint:
    """Bisection of ``at(r)`` (GFLOPs falling as ``r`` rises) towards
    ``fraction``; a ratio the schedule refuses (too few tokens left) lowers
    the upper end to the largest one it takes."""
    low = at(min_ratio)
    try:
        high = at(max_ratio)
    except ValueError:
        ok, bad = min_ratio, max_ratio
        for _ in range(steps):
            mid = (ok + bad) / 2
            try:
                at(mid)
                ok = mid
            except ValueError:
                bad = mid
        high = at(ok)
    if fraction >= low.fraction:
        return low
    if fraction <= high.fraction:
        return high
    # Invariant: low.fraction > fraction >= high.fraction.
    for _ in range(steps):
        mid = at((_last(low.ratio) + _last(high.ratio)) / 2)
        if mid.fraction > fraction:
            low = mid
        else:
            high = mid
    return min((low, high), key=lambda p: abs(p.fraction - fraction))


def _last(ratio: Any) -> float:
    """The ratio that :func:`_bisect` varies: the last layer's."""
    return float(ratio[-1]) if isinstance(ratio, tuple) else float(ratio)


def ratio_for_cost(counter: CostCounter,
                   merger: dict,
                   fraction: float,
                   max_ratio: float,
                   tolerance: float = 0.02,
                   min_ratio: float = 1e-3,
                   steps: int = 24) -> CostPoint:
    """The ratio whose GFLOPs come closest to ``fraction`` of the unmerged
    model's.

    First one ratio for every merge layer; if that misses the target by
    more than ``tolerance`` (relative to the target's GFLOPs; token counts
    are whole numbers, so GFLOPs move in steps), the last merge layer's
    ratio alone is bisected again with the others kept, which moves the
    GFLOPs in the finest steps.

    Args:
        counter (CostCounter): Counts the model's GFLOPs.
        merger (dict): The merger and its schedule, without ``ratio``.
        fraction (float): The target, e.g. 0.6 for -40% GFLOPs.
        max_ratio (float): The largest ratio the merger takes (0.5 for the
            bipartite mergers); a smaller one is used when the schedule
            refuses it (too few tokens left).
        tolerance (float): The relative miss that is good enough.
        min_ratio (float): The smallest ratio tried.
        steps (int): Bisection steps.

    Returns:
        CostPoint: The closest point found (``ratio`` a float, or a tuple
        when the last layer's differs); compare its ``fraction`` with the
        target to see whether the merger reaches it.
    """
    best = _bisect(lambda r: counter.at(merger, r), fraction, min_ratio,
                   max_ratio, steps)
    layers = len(merger.get('layers', ()))
    if abs(best.fraction / fraction - 1) <= tolerance or layers < 2:
        return best
    head = (best.ratio, ) * (layers - 1)
    try:
        tuned = _bisect(lambda r: counter.at(merger, head + (r, )), fraction,
                        min_ratio, max_ratio, steps)
    except ValueError:
        return best
    return min((best, tuned), key=lambda p: abs(p.fraction - fraction))
