"""Built-in data sets, generated offline: ``builtin:NAME?key=value&...``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from archsearch.data.dataset import SequenceDataset
from archsearch.errors import DataError
from archsearch.types import TaskKind


@dataclass(frozen=True)
class BuiltinTask:
    name: str
    description: str
    generate: Callable[..., SequenceDataset]
    defaults: dict[str, int]


def adding_problem(length: int = 100, n: int = 2000, seed: int = 0) -> SequenceDataset:
    """The adding problem (Hochreiter & Schmidhuber 1997).

    Two channels: uniform values in [0, 1] and a marker channel with exactly two ones, one in
    each half of the sequence; the target is the sum of the two marked values.
    """
    if length < 2:
        raise DataError(f"builtin:adding needs length >= 2, got {length}.")
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(n, length)).astype(np.float32)
    markers = np.zeros((n, length), dtype=np.float32)
    half = length // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    X = np.stack([values, markers], axis=-1)  # (n, T, 2)
    y = (values[rows, first] + values[rows, second]).astype(np.float32)  # (n,)
    return SequenceDataset(
        name=f"adding(length={length}, n={n})",
        task=TaskKind.REGRESSION,
        X=X,
        y=y,
        feature_names=("value", "marker"),
        target_name="sum_of_marked",
    )


BUILTIN_TASKS: dict[str, BuiltinTask] = {
    task.name: task
    for task in [
        BuiltinTask(
            "adding",
            "Adding problem: regress the sum of two marked values in a long sequence.",
            adding_problem,
            {"length": 100, "n": 2000, "seed": 0},
        ),
    ]
}


def load_builtin(spec: str) -> SequenceDataset:
    """Build ``NAME?key=value&...`` (the part after ``builtin:``)."""
    name, _, query = spec.partition("?")
    task = BUILTIN_TASKS.get(name)
    if task is None:
        known = ", ".join(sorted(BUILTIN_TASKS))
        raise DataError(f"unknown built-in data set '{name}'; built-in data sets: {known}.")
    kwargs = dict(task.defaults)
    for item in filter(None, query.split("&")):
        key, sep, raw = item.partition("=")
        if not sep or key not in task.defaults:
            known = ", ".join(task.defaults)
            raise DataError(
                f"builtin:{name} got '{item}'; it takes key=value parameters among: {known}."
            )
        try:
            kwargs[key] = int(raw)
        except ValueError:
            raise DataError(f"builtin:{name} parameter {key} must be an integer, not '{raw}'.") \
                from None
        if kwargs[key] < (0 if key == "seed" else 1):
            raise DataError(f"builtin:{name} parameter {key} must be positive, not {raw}.")
    return task.generate(**kwargs)
