"""How a time budget is shared among trials: pure decisions, no Ray (the adapters in
``ray_backend`` apply them)."""

from __future__ import annotations

import dataclasses
import math

from archsearch.types import Constraints

# Under a time budget a trial trains at most the trials' minutes x parallel slots / this, so
# that one slow configuration cannot take the budget: it is scored on its best round so far.
MIN_TRIALS_PER_TIME_BUDGET = 8


def trial_constraints(constraints: Constraints, budget_minutes: float | None,
                      slots: int) -> Constraints:
    """The constraints each trial runs under: the user's, with ``max_trial_minutes`` lowered to
    a trial's share of a time budget (see :data:`MIN_TRIALS_PER_TIME_BUDGET`)."""
    if budget_minutes is None:
        return constraints
    share = budget_minutes * slots / MIN_TRIALS_PER_TIME_BUDGET
    limit = min(share, constraints.max_trial_minutes or math.inf)
    return dataclasses.replace(constraints, max_trial_minutes=limit)


# Of the time a trial has left before the trials' end, the share it may train: the rest goes
# to its start (a fresh Ray worker imports torch: 5-15 s here), its cost measurement, its
# validation rounds and its test.
TRAINING_SHARE_OF_TIME_LEFT = 0.7
TRIAL_START_SECONDS = 5.0
# No trial starts with less time left than this: it could not measure its cost and train a
# round before Ray Tune's time budget stopped it (it would be stored `failed` and lost).
MIN_TRIAL_SECONDS = 20.0


def training_seconds_left(seconds_left: float) -> float:
    """The seconds a trial starting with ``seconds_left`` before the trials' time budget ends
    may train (see :data:`TRAINING_SHARE_OF_TIME_LEFT`)."""
    return max(1.0, (seconds_left - TRIAL_START_SECONDS) * TRAINING_SHARE_OF_TIME_LEFT)


def within_time_left(constraints: Constraints, seconds_left: float | None) -> Constraints:
    """``constraints`` with ``max_trial_minutes`` lowered so that a trial starting with
    ``seconds_left`` before the trials' time budget ends finishes on its own (its schedule
    annealed, its best round kept: ``archsearch.trial.runner.warmup_cosine``) instead of being
    stopped by Ray Tune and lost; unchanged when ``seconds_left`` is None (no time budget)."""
    if seconds_left is None:
        return constraints
    limit = min(training_seconds_left(seconds_left) / 60.0,
                constraints.max_trial_minutes or math.inf)
    return dataclasses.replace(constraints, max_trial_minutes=limit)
