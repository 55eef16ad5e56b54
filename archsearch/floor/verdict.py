"""Does the best searched model beat the floor? Decided on selection scores, never on test.

The pick competes with the score it was selected on: its cross-validation mean when it was a
cross-validated finalist (then against the floor's cross-validation mean on the same folds),
else its validation score (against the floor's validation score on the same split). A tie goes
to the floor: a searched model must be *better* than a one-second classical fit to be worth its
cost. The test split only ever reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from archsearch.types import FloorResult, Metric

SEARCHED = "searched"
FLOOR = "floor"
LABEL = {"minirocket+ridge": "MiniRocket+ridge", "lags+ridge": "linear autoregression (ridge)"}
DESCRIPTION = {
    "minirocket+ridge": "MiniRocket features (aeon) and a ridge model (scikit-learn)",
    "lags+ridge": "a ridge regression on the lookback window, i.e. a linear autoregression "
                  "(scikit-learn)",
}


class Scored(Protocol):
    """What the verdict reads of a searched trial (``archsearch.store.TrialRecord`` is one)."""

    number: int
    family: str
    val_score: float | None
    cv_score: float | None


@dataclass(frozen=True)
class FloorVerdict:
    answer: str  # SEARCHED | FLOOR
    compared_on: str | None  # "cross-validation" | "validation"; None: no searched model
    searched_score: float | None
    floor_score: float | None

    @property
    def floor_wins(self) -> bool:
        return self.answer == FLOOR


def label(floor: FloorResult) -> str:
    return LABEL.get(floor.method, floor.method)


def describe(floor: FloorResult) -> str:
    return DESCRIPTION.get(floor.method, floor.method)


def judge(floor: FloorResult, best: Scored | None, metric: Metric) -> FloorVerdict:
    """Whether ``best`` (the recommendation's pick; None when no trial completed) beats
    ``floor``."""
    if best is None or best.val_score is None:
        return FloorVerdict(FLOOR, None, None, floor.val_score)
    if best.cv_score is not None and floor.cv_mean is not None:
        mine, theirs, on = best.cv_score, floor.cv_mean, "cross-validation"
    else:
        mine, theirs, on = best.val_score, floor.val_score, "validation"
    return FloorVerdict(SEARCHED if metric.better(mine, theirs) else FLOOR, on, mine, theirs)


def sentence(floor: FloorResult, best: Scored | None, metric: Metric,
             verdict: FloorVerdict) -> str:
    """One plain sentence for the recommendation's rationale."""
    name = label(floor)
    if best is None or verdict.searched_score is None:
        measured = (f"validation {metric.name} {floor.val_score:.4g}"
                    if floor.val_score is not None else "no validation score")
        return (f"No searched model completed: the floor, {name} ({measured}), is the "
                f"answer; its model is exported next to the report (model/floor_model.joblib).")
    on = "cross-validated" if verdict.compared_on == "cross-validation" else "on validation"
    pick = f"the best searched model ({best.family}, trial {best.number})"
    if verdict.floor_wins:
        return (f"No searched model beat the floor: {name} scored {verdict.floor_score:.4g} "
                f"{metric.name} {on} vs {verdict.searched_score:.4g} for {pick}; the floor "
                f"model is the answer (exported next to the report as model/floor_model.joblib), "
                f"and the searched pick below is shown for comparison only.")
    return (f"{pick[0].upper()}{pick[1:]} beat the floor: {verdict.searched_score:.4g} "
            f"{metric.name} {on} vs {verdict.floor_score:.4g} for {name}, fitted in "
            f"{floor.fit_seconds:.2g} s.")


def floor_summary(floor: FloorResult | None, best: Scored | None,
                  metric: Metric) -> dict[str, Any] | None:
    """The ``floor`` entry of the ``--json`` summary (None: no floor was measured)."""
    if floor is None:
        return None
    verdict = judge(floor, best, metric)
    return {
        "method": floor.method, "val": floor.val_score, "test": floor.test_score,
        "seconds": floor.fit_seconds, "cv_mean": floor.cv_mean, "cv_std": floor.cv_std,
        "cv_folds": floor.cv_folds, "bag_test": floor.bag_test_score,
        "latency_ms": floor.latency_ms, "size_mb": floor.size_mb,
        "train_series": floor.train_series, "beats_best": verdict.floor_wins,
        "compared_on": verdict.compared_on,
    }
