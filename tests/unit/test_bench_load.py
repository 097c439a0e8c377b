"""The pure helpers of bench/concurrency.py: percentiles, medians and a cell's count
(benchmarks are never timed tests: nothing here measures speed)."""

from __future__ import annotations

import pytest

from bench._load import Sample, median_sample, percentile, run_cell


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 1..100, unordered
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_or_outside_the_range_is_refused() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 0)


def test_median_sample_takes_each_figure_apart() -> None:
    samples = [Sample(10, 1.0, 0.3, 0.9), Sample(30, 3.0, 0.1, 0.5), Sample(20, 2.0, 0.2, 0.7)]
    assert median_sample(samples) == Sample(20, 2.0, 0.2, 0.7)


def test_a_cell_makes_every_thread_s_calls_and_a_failure_stops_it() -> None:
    made: list[int] = []
    sample = run_cell([lambda: made.append(1), lambda: made.append(2)], per_thread=5)
    assert sample.calls == 10 and sorted(made) == [1] * 5 + [2] * 5

    def fails() -> None:
        raise OSError("refused")

    with pytest.raises(RuntimeError, match="refused"):
        run_cell([fails], per_thread=3)
