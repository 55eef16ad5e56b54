import pytest

from archsearch.errors import ConstraintError
from archsearch.types import Constraints, Metric, TaskKind


def test_constraints_parse_all_keys():
    c = Constraints.parse(["max_latency_ms=2.5", "max_params=5000", "max_memory_mb=10",
                           "max_trial_minutes=1", "streaming=true", "device=cpu"])
    assert c == Constraints(2.5, 5000, 10.0, 1.0, True, "cpu")


@pytest.mark.parametrize("pair, fragment", [
    ("max_params", "KEY=VALUE"),
    ("speed=1", "unknown constraint 'speed'"),
    ("max_params=abc", "positive int"),
    ("max_params=-3", "positive int"),
    ("max_latency_ms=nan", "positive float"),
    ("streaming=maybe", "true or false"),
    ("device=tpu", "auto, cpu or cuda"),
])
def test_constraints_reject_bad_values(pair, fragment):
    with pytest.raises(ConstraintError, match=fragment):
        Constraints.parse([pair])


def test_violations_name_each_broken_limit():
    c = Constraints(max_params=10, max_latency_ms=1.0)
    assert c.violations(5, 0.5, 1.0) == []
    reasons = c.violations(20, 2.0, 1.0)
    assert len(reasons) == 2 and "max_params=10" in reasons[0] and "max_latency_ms" in reasons[1]


def test_metric_direction():
    acc, mse = Metric.for_task(TaskKind.CLASSIFICATION), Metric.for_task(TaskKind.REGRESSION)
    assert acc.better(0.9, 0.8) and not acc.better(0.7, 0.8)
    assert mse.better(0.1, 0.2) and mse.better(0.1, None) and not mse.better(float("nan"), 1.0)
