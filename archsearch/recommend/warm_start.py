"""Warm start: the winning configurations of the most similar past tasks."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from archsearch.store import TaskRecord, TrialRecord

# Meta-features compared on a log scale: a task twice as long is as far as one half as long.
SIMILARITY_KEYS = ("seq_len", "n_features", "n_sequences")
MAX_DISTANCE = 1.5  # in natural-log units, summed over the keys


def task_distance(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    if a.get("task") != b.get("task"):
        return math.inf
    distance = 0.0
    for key in SIMILARITY_KEYS:
        x, y = a.get(key), b.get(key)
        if not isinstance(x, (int, float)) or not isinstance(y, (int, float)) or x <= 0 or y <= 0:
            return math.inf
        distance += abs(math.log(x) - math.log(y))
    return distance


def similar_winners(meta_features: Mapping[str, Any],
                    past: list[tuple[TaskRecord, TrialRecord]],
                    limit: int = 2) -> list[tuple[TaskRecord, TrialRecord, float]]:
    """Past tasks' best trials, nearest first, within ``MAX_DISTANCE``; one per family."""
    ranked = sorted(((task, trial, task_distance(meta_features, task.meta_features))
                     for task, trial in past), key=lambda item: item[2])
    chosen, families = [], set()
    for task, trial, distance in ranked:
        if distance > MAX_DISTANCE or len(chosen) == limit:
            break
        if trial.family not in families:
            chosen.append((task, trial, distance))
            families.add(trial.family)
    return chosen
