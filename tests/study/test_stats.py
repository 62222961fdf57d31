"""study.stats against direct formulas, scipy's own tests and
numbers known from the earlier study."""
import math

import numpy as np
import pytest
from scipy import stats as st
from sttm_study import stats

# The earlier study at -33% GFLOPs, seeds 0, 1, 2 (docs/results/study):
# STTM (orthogonal, r0.7) and ToMe by keys (r0.28).
STTM = [81.5, 85.0, 77.5]
TOME = [75.5, 80.5, 80.5]


def test_paired_t_known_numbers():
    r = stats.paired_t(STTM, TOME)
    # Differences 6, 4.5, -3: mean 2.5, sd by hand.
    d = [6.0, 4.5, -3.0]
    sd = math.sqrt(sum((x - 2.5)**2 for x in d) / 2)
    assert r.n == 3 and r.mean == pytest.approx(2.5)
    assert r.sd == pytest.approx(sd)
    # The figure: p = 0.46.
    assert round(r.p, 2) == 0.46
    half = st.t.ppf(0.975, 2) * sd / math.sqrt(3)
    assert r.ci == pytest.approx((2.5 - half, 2.5 + half))
    assert r.p == pytest.approx(st.ttest_rel(STTM, TOME).pvalue)


def test_paired_t_refuses_unpaired():
    with pytest.raises(ValueError, match='equal lengths'):
        stats.paired_t([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match='at least 2'):
        stats.paired_t([1.0])


def test_tost_equals_two_one_sided_tests():
    rng = np.random.default_rng(0)
    a = rng.normal(80, 2, 12)
    b = a + rng.normal(0.3, 1.0, 12)
    lower = st.ttest_1samp(a - b, -2.0, alternative='greater').pvalue
    upper = st.ttest_1samp(a - b, 2.0, alternative='less').pvalue
    assert stats.tost(a, b, 2.0) == pytest.approx(max(lower, upper))
    # Equivalent at 5% exactly when the 90% interval is inside +-2.
    r = stats.paired_t(a, b, confidence=0.90)
    assert (stats.tost(a, b, 2.0) < 0.05) == (-2 < r.ci[0] and r.ci[1] < 2)


def test_noninferiority_is_the_lower_one_sided_test():
    rng = np.random.default_rng(3)
    a = rng.normal(80, 2, 10)
    b = a - rng.normal(2.5, 3.0, 10)  # a ahead by about 2.5, noisy
    direct = st.ttest_1samp(a - b, -2.0, alternative='greater').pvalue
    assert stats.noninferiority(a, b, 2.0) == pytest.approx(direct)
    # Far above the baseline: not equivalent (two-sided), yet not worse.
    ahead = [5, 6, 7, 5.5]
    assert stats.tost(ahead, [0] * 4) > 0.5
    assert stats.noninferiority(ahead, [0] * 4) < 0.01
    assert stats.noninferiority([-5, -6, -7, -5.5], [0] * 4) > 0.9


def test_tost_not_equivalent_when_far():
    assert stats.tost([5, 6, 7, 5.5], [0, 0, 0, 0], margin=2.0) > 0.5


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3 * 0.01, max(., 2 * 0.03), max(., 0.04)
    assert stats.holm([0.04, 0.01, 0.03]) == pytest.approx([0.06, 0.03, 0.06])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_bootstrap_interval_covers_mean_and_is_reproducible():
    d = np.random.default_rng(1).normal(1.0, 2.0, 15)
    lo, hi = stats.bootstrap_ci(d)
    assert lo < d.mean() < hi
    assert stats.bootstrap_ci(d) == (lo, hi)
    # Close to the t interval for normal data.
    t = stats.paired_t(d)
    assert lo == pytest.approx(t.ci[0], abs=0.5)
    assert hi == pytest.approx(t.ci[1], abs=0.5)


def test_sign_test():
    wins, ties, losses, p = stats.sign_test([1, 2, 3, 4, 5, 6],
                                            [0, 0, 0, 4, 9, 0])
    assert (wins, ties, losses) == (4, 1, 1)
    assert p == pytest.approx(st.binomtest(4, 5).pvalue)


@pytest.mark.parametrize('sd', [1.0, 3.0, 4.9])
def test_seeds_needed_is_the_smallest_n(sd):
    n = stats.seeds_needed(sd, 1.5)

    def half(k):
        return st.t.ppf(0.975, k - 1) * sd / math.sqrt(k)

    assert half(n) <= 1.5
    assert n == 2 or half(n - 1) > 1.5


def test_binomial_se():
    # 200 videos at 80%: the 2.8 points.
    assert stats.binomial_se(80, 200) == pytest.approx(2.83, abs=0.01)


def test_mcnemar_is_the_exact_binomial_on_disagreements():
    # 7 videos only a gets right, 2 only b, 11 both, 5 neither.
    a = [1] * 7 + [0] * 2 + [1] * 11 + [0] * 5
    b = [0] * 7 + [1] * 2 + [1] * 11 + [0] * 5
    # Direct: P(X <= 2), X ~ Bin(9, 1/2) = (1 + 9 + 36) / 512, doubled.
    assert stats.mcnemar(a, b) == pytest.approx(2 * 46 / 512)
    assert stats.mcnemar(b, a) == pytest.approx(2 * 46 / 512)
    assert stats.mcnemar(a, a) == 1.0
    with pytest.raises(ValueError, match='equal lengths'):
        stats.mcnemar(a, b[:-1])


def test_two_level_bootstrap_covers_seeds_and_videos():
    rng = np.random.default_rng(0)
    # Seeds that differ by a constant offset only: the interval is about
    # the video-level one of that offset's mean.
    a = (rng.random((1, 4000)) < 0.8).repeat(5, axis=0)
    b = (rng.random((1, 4000)) < 0.7).repeat(5, axis=0)
    lo, hi = stats.two_level_bootstrap_ci(a, b, resamples=1000)
    diff = 100 * (a.mean() - b.mean())
    assert lo < diff < hi
    # Two binomial proportions, independent: se = sqrt(.16 + .21) / 63.2.
    se = 100 * math.sqrt((0.8 * 0.2 + 0.7 * 0.3) / 4000)
    assert (hi - lo) / 2 == pytest.approx(1.96 * se, rel=0.2)
    # Seed spread adds to it: one seed far off widens the interval.
    a2 = a.copy()
    a2[0, :1200] = 0
    lo2, hi2 = stats.two_level_bootstrap_ci(a2, b, resamples=1000)
    assert hi2 - lo2 > 2 * (hi - lo)
    with pytest.raises(ValueError, match='seeds, videos'):
        stats.two_level_bootstrap_ci(a[0], b[0])
