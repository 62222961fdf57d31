"""Statistics of paired comparisons over seeds.

A study compares variants trained with the same seeds: seed ``s`` gives every
variant the same pre-trained backbone, the same data order and the same
initialisation of what the variants share, so the per-seed difference
``a_s - b_s`` is the unit of analysis (a paired design). Everything here is
over those differences:

- :func:`paired_t` -- mean difference, its t confidence interval and the
  two-sided p-value of "no difference";
- :func:`bootstrap_ci` -- a percentile bootstrap interval of the mean
  difference, which assumes no normality;
- :func:`tost` -- two one-sided tests of equivalence within ``+- margin``;
- :func:`holm` -- Holm's step-down adjustment of several p-values;
- :func:`sign_test` -- wins against losses, ties dropped;
- :func:`seeds_needed` -- the number of seeds for a t interval of a given
  half-width, from a standard deviation of the differences;
- :func:`mcnemar` -- the exact test of paired per-video disagreements;
- :func:`two_level_bootstrap_ci` -- an interval over seeds and videos
  alike, from per-video predictions.
"""
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np
from scipy import stats as _st


@dataclass(frozen=True)
class PairedResult:
    """A paired comparison of ``a`` against ``b`` over seeds.

    Args:
        n (int): Number of seeds (pairs).
        mean (float): Mean of ``a - b``.
        sd (float): Sample standard deviation of ``a - b``.
        ci (tuple[float, float]): t confidence interval of the mean.
        p (float): Two-sided p-value of "the mean difference is 0".
    """
    n: int
    mean: float
    sd: float
    ci: tuple
    p: float


def _diffs(a: Sequence[float], b: Optional[Sequence[float]]) -> np.ndarray:
    d = np.asarray(a, dtype=float)
    if b is not None:
        b = np.asarray(b, dtype=float)
        if b.shape != d.shape:
            raise ValueError(f'paired samples need equal lengths, got '
                             f'{d.shape[0]} and {b.shape[0]}')
        d = d - b
    if d.ndim != 1 or d.size < 2:
        raise ValueError(f'need at least 2 pairs, got {d.size}')
    return d


def paired_t(a: Sequence[float],
             b: Optional[Sequence[float]] = None,
             confidence: float = 0.95) -> PairedResult:
    """Paired t interval and test of ``mean(a - b)``.

    Args:
        a (Sequence[float]): Per-seed values of the first variant, or the
            differences themselves when ``b`` is None.
        b (Sequence[float], optional): Per-seed values of the second
            variant, in the same seed order.
        confidence (float): Confidence level of the interval.
            Defaults to 0.95.

    Returns:
        PairedResult: n, mean, sd, the interval and the two-sided p-value.
    """
    d = _diffs(a, b)
    n = d.size
    mean = float(d.mean())
    sd = float(d.std(ddof=1))
    se = sd / math.sqrt(n)
    half = float(_st.t.ppf((1 + confidence) / 2, n - 1)) * se
    if se == 0:
        p = 1.0 if mean == 0 else 0.0
    else:
        p = float(2 * _st.t.sf(abs(mean) / se, n - 1))
    return PairedResult(n, mean, sd, (mean - half, mean + half), p)


def bootstrap_ci(a: Sequence[float],
                 b: Optional[Sequence[float]] = None,
                 confidence: float = 0.95,
                 resamples: int = 20000,
                 seed: int = 0) -> tuple:
    """Percentile bootstrap interval of ``mean(a - b)``, resampling seeds.

    Args:
        a (Sequence[float]): Per-seed values, or differences if ``b`` is
            None.
        b (Sequence[float], optional): Per-seed values of the other variant.
        confidence (float): Confidence level. Defaults to 0.95.
        resamples (int): Bootstrap resamples. Defaults to 20000.
        seed (int): Seed of the resampling, so the interval is reproducible.
            Defaults to 0.

    Returns:
        tuple[float, float]: The interval.
    """
    d = _diffs(a, b)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(resamples, d.size))
    means = d[idx].mean(axis=1)
    alpha = 1 - confidence
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def tost(a: Sequence[float],
         b: Optional[Sequence[float]] = None,
         margin: float = 2.0) -> float:
    """Two one-sided tests (TOST) of equivalence: ``|mean(a - b)| < margin``.

    The p-value is the larger of the two one-sided t tests of
    ``mean <= -margin`` and ``mean >= margin``. Equivalence at level alpha
    holds when it is below alpha, which is the same as the ``1 - 2 alpha``
    t interval lying inside ``(-margin, margin)``.

    Args:
        a (Sequence[float]): Per-seed values, or differences if ``b`` is
            None.
        b (Sequence[float], optional): Per-seed values of the reference.
        margin (float): Equivalence margin, in the values' units (points of
            top-1). Defaults to 2.0.

    Returns:
        float: The TOST p-value.
    """
    if margin <= 0:
        raise ValueError(f'margin must be > 0, got {margin}')
    d = _diffs(a, b)
    n = d.size
    se = float(d.std(ddof=1)) / math.sqrt(n)
    mean = float(d.mean())
    if se == 0:
        return 0.0 if abs(mean) < margin else 1.0
    p_lower = float(_st.t.sf((mean + margin) / se, n - 1))
    p_upper = float(_st.t.cdf((mean - margin) / se, n - 1))
    return max(p_lower, p_upper)


def holm(pvalues: Sequence[float]) -> List[float]:
    """Holm's step-down adjusted p-values (family-wise error control).

    Args:
        pvalues (Sequence[float]): Unadjusted p-values of the family.

    Returns:
        list[float]: Adjusted p-values, in the input order; reject where
        the adjusted value is below alpha.
    """
    p = np.asarray(pvalues, dtype=float)
    m = p.size
    order = np.argsort(p, kind='stable')
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def sign_test(a: Sequence[float],
              b: Optional[Sequence[float]] = None) -> tuple:
    """Wins, ties, losses of ``a`` over ``b`` and the two-sided sign-test
    p-value (ties dropped).

    Args:
        a (Sequence[float]): Per-seed values, or differences if ``b`` is
            None.
        b (Sequence[float], optional): Per-seed values of the other variant.

    Returns:
        tuple[int, int, int, float]: wins, ties, losses, p.
    """
    d = _diffs(a, b)
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    ties = int(d.size - wins - losses)
    p = 1.0 if wins + losses == 0 else float(
        _st.binomtest(wins, wins + losses, 0.5).pvalue)
    return wins, ties, losses, p


def seeds_needed(sd: float,
                 half_width: float = 1.5,
                 confidence: float = 0.95,
                 minimum: int = 2) -> int:
    """Seeds for a paired t interval no wider than ``+- half_width``.

    The smallest ``n >= minimum`` with
    ``t_{(1 + confidence) / 2, n - 1} * sd / sqrt(n) <= half_width``.

    Args:
        sd (float): Standard deviation of the per-seed differences.
        half_width (float): Largest half-width of the interval.
            Defaults to 1.5.
        confidence (float): Confidence level. Defaults to 0.95.
        minimum (int): Smallest n considered. Defaults to 2.

    Returns:
        int: The number of seeds.
    """
    if half_width <= 0 or sd < 0:
        raise ValueError('need half_width > 0 and sd >= 0')
    n = max(2, minimum)
    quantile = (1 + confidence) / 2
    while float(_st.t.ppf(quantile, n - 1)) * sd / math.sqrt(n) > half_width:
        n += 1
    return n


def binomial_se(accuracy: float, videos: int) -> float:
    """Standard error (in points) of a top-1 accuracy on ``videos`` videos.

    Args:
        accuracy (float): Accuracy in percent.
        videos (int): Number of test videos.

    Returns:
        float: ``100 * sqrt(p (1 - p) / videos)``.
    """
    p = accuracy / 100
    return 100 * math.sqrt(p * (1 - p) / videos)


def noninferiority(a: Sequence[float],
                   b: Optional[Sequence[float]] = None,
                   margin: float = 2.0) -> float:
    """One-sided paired t test that ``mean(a - b)`` is above ``-margin``
    (``a`` is not worse than ``b`` by ``margin`` or more): the lower of
    :func:`tost`'s two tests alone.

    Args:
        a (Sequence[float]): Per-seed values, or differences if ``b`` is
            None.
        b (Sequence[float], optional): Per-seed values of the reference.
        margin (float): Non-inferiority margin, in the values' units.
            Defaults to 2.0.

    Returns:
        float: The p-value; non-inferiority at level alpha holds when it is
        below alpha, the same as the one-sided ``1 - alpha`` lower bound
        lying above ``-margin``.
    """
    if margin <= 0:
        raise ValueError(f'margin must be > 0, got {margin}')
    d = _diffs(a, b)
    se = float(d.std(ddof=1)) / math.sqrt(d.size)
    mean = float(d.mean())
    if se == 0:
        return 0.0 if mean > -margin else 1.0
    return float(_st.t.sf((mean + margin) / se, d.size - 1))


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> float:
    """Exact McNemar test of two classifiers scored on the same videos.

    Only the videos where they disagree count: ``b`` where ``a`` alone is
    right, ``c`` where ``b`` alone is; under "no difference" each
    disagreement goes either way with probability 1/2.

    Args:
        correct_a (Sequence[bool]): Per video, whether ``a`` is right.
        correct_b (Sequence[bool]): The same for ``b``, same videos.

    Returns:
        float: Two-sided p-value, ``min(1, 2 P(X <= min(b, c)))`` with
        ``X ~ Binomial(b + c, 1/2)``; 1 when they never disagree.
    """
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f'paired predictions need equal lengths, got '
                         f'{a.size} and {b.size}')
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    if only_a + only_b == 0:
        return 1.0
    return float(
        min(1.0, 2 * _st.binom.cdf(min(only_a, only_b), only_a + only_b, 0.5)))


def two_level_bootstrap_ci(correct_a: np.ndarray,
                           correct_b: Optional[np.ndarray] = None,
                           confidence: float = 0.95,
                           resamples: int = 4000,
                           seed: int = 0) -> tuple:
    """Percentile interval (points of top-1) of the mean difference in
    accuracy that counts both the seeds' and the test set's variance:
    every resample draws seeds with replacement and, independently, videos
    with replacement (the same videos for every seed, as the test set is
    shared).

    Args:
        correct_a (np.ndarray): ``(seeds, videos)`` 0/1, whether ``a`` is
            right on each video with each seed.
        correct_b (np.ndarray, optional): The same for ``b``; None gives
            the interval of ``a``'s accuracy itself.
        confidence (float): Confidence level. Defaults to 0.95.
        resamples (int): Bootstrap resamples. Defaults to 4000.
        seed (int): Seed of the resampling. Defaults to 0.

    Returns:
        tuple[float, float]: The interval, in points.
    """
    d = np.asarray(correct_a, dtype=float)
    if correct_b is not None:
        d = d - np.asarray(correct_b, dtype=float)
    if d.ndim != 2:
        raise ValueError(f'need (seeds, videos), got shape {d.shape}')
    seeds, videos = d.shape
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    for i in range(resamples):
        weight = np.bincount(
            rng.integers(0, videos, videos), minlength=videos) / videos
        per_seed = d @ weight
        means[i] = per_seed[rng.integers(0, seeds, seeds)].mean()
    alpha = 1 - confidence
    lo, hi = np.quantile(100 * means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)
