"""What one run of the search is given (Ray-free: the engine and the Ray adapter share it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from archsearch.data import PreparedData
from archsearch.options import SearchOptions
from archsearch.types import ArchConfig, TrainConfig, TrialOutcome


@dataclass(frozen=True)
class FinishedTrial:
    """A trial that completed in an earlier sitting of a resumed search: its finalists are
    chosen among these too. ``cv_folds``: the folds it was already re-scored with (None: not
    yet), so that a resume does not run them again."""

    number: int
    arch: ArchConfig
    train: TrainConfig
    outcome: TrialOutcome
    cv_folds: int | None = None


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
    finished: tuple[FinishedTrial, ...] = ()  # completed trials of a resumed search, kept
    warm_start: tuple[dict, ...] = ()  # stored trial configs of similar past tasks' winners
    family_order: tuple[str, ...] = ()  # the initial design's order (the instant ranking)
    cv_below: int = 500  # "small": fewer train+validation sequences than this
    cv_finalists: int = 5  # the best trial of each of this many families, at most
    deadline: float | None = None  # time.time() by which the finalists must be re-scored

    def cross_validates(self, data: PreparedData) -> bool:
        """Whether finalists are re-scored by k-fold cross-validation: on small data."""
        return self.options.cv_folds >= 2 and len(data.train) + len(data.val) < self.cv_below
