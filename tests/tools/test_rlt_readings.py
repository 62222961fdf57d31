"""tools/analysis_tools/rlt_readings.py: the decision rule of PROTOCOL.md's
amendment of 2026-12-06 (a reading is ahead only when the 95% t interval of
its paired difference lies above 0 and has a width)."""
import pytest
from rlt_readings import _fmt_ci


@pytest.mark.parametrize('values, verdict', [
    ({
        0: 93.0,
        1: 93.5
    }, 'ahead'),
    ({
        0: 91.0,
        1: 89.0
    }, 'no difference shown'),
    ({
        0: 80.0,
        1: 80.5
    }, 'behind'),
    ({
        0: 91.0,
        1: 91.0
    }, 'not shown (equal differences: zero-width '
     'interval)'),
])
def test_the_verdict_of_two_paired_seeds(values, verdict):
    base = {0: 90.0, 1: 90.0}
    result = _fmt_ci(values, base, [0, 1])
    assert result['verdict'] == verdict
    assert result['mean'] == pytest.approx(sum(values.values()) / 2 - 90.0)


def test_the_cell_gives_mean_interval_and_seeds():
    cell = _fmt_ci({0: 90.5, 1: 89.0}, {0: 90.0, 1: 90.0}, [0, 1])['cell']
    # d = +0.5, -1.0: mean -0.25, half-width 12.706 * 0.75 = 9.53.
    assert cell == '-0.25 [-9.78, +9.28] (+0.5, -1.0)'
