"""Warm start: the winning configurations of the most similar past tasks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from archsearch.recommend.similarity import task_distance
from archsearch.store import TaskRecord, TrialRecord

# In the units of archsearch.recommend.similarity (decades of length): about a fivefold length
# apart at most, and below its KIND_GAP: never a task of another kind.
MAX_DISTANCE = 0.75


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
