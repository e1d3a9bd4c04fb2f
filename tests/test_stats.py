import numpy as np
import pytest

from edgeprune.bench.stats import median_ratio
from edgeprune.results.latency import Latency


def test_latency_from_values_matches_numpy_percentiles():
    values = np.arange(1, 101, dtype=float)  # 1..100 ms
    latency = Latency.from_values(values)
    assert latency.n == 100
    assert latency.p50 == pytest.approx(50.5)
    assert latency.p90 == pytest.approx(np.percentile(values, 90))
    assert latency.p99 == pytest.approx(np.percentile(values, 99))
    assert (latency.min, latency.max) == (1.0, 100.0)
    assert latency.mean == pytest.approx(50.5)
    assert latency.std == pytest.approx(np.std(values, ddof=1))


def test_latency_of_one_sample_has_zero_spread():
    latency = Latency.from_values([2.5])
    assert (latency.p50, latency.p99, latency.std, latency.n) == (2.5, 2.5, 0.0, 1)


def test_latency_needs_samples():
    with pytest.raises(ValueError):
        Latency.from_values([])


def test_ratio_interval_covers_a_true_two_fold_speedup():
    rng = np.random.default_rng(1)
    slow = rng.lognormal(np.log(10.0), 0.05, 300)
    fast = rng.lognormal(np.log(5.0), 0.05, 300)
    estimate = median_ratio(slow, fast)
    assert estimate.low < 2.0 < estimate.high
    assert estimate.low > 1.8


def test_ratio_interval_of_same_distribution_straddles_one():
    rng = np.random.default_rng(2)
    a = rng.lognormal(np.log(3.0), 0.2, 200)
    b = rng.lognormal(np.log(3.0), 0.2, 200)
    estimate = median_ratio(a, b)
    assert estimate.low < 1.0 < estimate.high


def test_ratio_is_reproducible_for_a_seed():
    a, b = [1.0, 1.1, 0.9, 1.05], [2.0, 2.1, 1.9]
    assert median_ratio(a, b, seed=3) == median_ratio(a, b, seed=3)
