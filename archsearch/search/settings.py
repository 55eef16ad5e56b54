"""What one run of the search is given (Ray-free: the engine and the Ray adapter share it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from archsearch.options import SearchOptions


@dataclass(frozen=True)
class SearchSettings:
    """One run of the search: the task's options, what is left of its budget, and where it
    runs."""

    options: SearchOptions = field(default_factory=SearchOptions)
    trials_left: int | None = None  # None: trials run until trial_minutes is spent
    trial_minutes: float | None = None  # for the trials; the finalists have ``deadline``
    ray_address: str | None = None
    optuna_storage: str | None = None
    study_name: str = "archsearch"
    rerun_numbers: tuple[int, ...] = ()  # unfinished trials of a resumed search, run again
    warm_start: tuple[dict, ...] = ()  # stored trial configs of similar past tasks' winners
    family_order: tuple[str, ...] = ()  # the initial design's order (the instant ranking)
    cv_below: int = 500  # "small": fewer train+validation sequences than this
    cv_finalists: int = 5  # the best trial of each of this many families, at most
    deadline: float | None = None  # time.time() by which the finalists must be re-scored
