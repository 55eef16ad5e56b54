"""What the recommendation weighed, as plain records: each family's rank, the trust in past
data, and the whole evidence the rationale puts into words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archsearch.recommend.portfolio import Portfolio
from archsearch.recommend.ranker import PastEvidence
from archsearch.recommend.rules import Priors
from archsearch.store.records import TrialRecord
from archsearch.types import Metric


@dataclass(frozen=True)
class FamilyRank:
    family: str
    prior: float
    measured: float | None  # best feasible validation score of the family, in the metric's unit
    n_trials: int  # completed trials that meet the constraints
    score: float  # combined, higher is better
    excluded_by: str | None = None
    past: float | None = None  # past tasks' predicted normalised score (0 worst .. 1 best)
    past_weight: float = 0.0  # trust in ``past`` (0..1)
    n_infeasible: int = 0  # completed trials of the family that break a constraint
    cross_validated: bool = False  # ``measured`` is a k-fold mean (a finalist), not one split

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "prior": self.prior, "measured": self.measured,
                "n_trials": self.n_trials, "score": self.score, "excluded_by": self.excluded_by,
                "past": self.past, "past_weight": self.past_weight,
                "n_infeasible": self.n_infeasible, "cross_validated": self.cross_validated}


@dataclass(frozen=True)
class DataTrust:
    """How far past data is trusted against the rules, and the held-out evidence for it."""

    factor: float  # multiplies DATA_LOGODDS in the belief
    regret: dict[float, float]  # candidate factor -> mean regret over the held-out tasks
    n_tasks: int  # held-out past tasks the regrets average over (0: not calibrated)

    def to_dict(self) -> dict[str, Any]:
        return {"factor": self.factor, "n_tasks": self.n_tasks,
                "regret": {str(k): round(v, 4) for k, v in self.regret.items()}}


UNCALIBRATED = DataTrust(1.0, {}, 0)


@dataclass(frozen=True)
class Evidence:
    """Everything a recommendation rests on (:func:`archsearch.recommend.combine.recommend`)."""

    priors: Priors  # the rules that fired and the prior weights
    ranking: list[FamilyRank]  # best first
    belief: dict[str, float]  # family -> log prior, updated by past data
    metric: Metric
    past: PastEvidence | None  # None: past data not consulted
    trust: DataTrust | None
    limits: dict[str, float]  # constraint -> limit on a measured cost
    completed: list[TrialRecord]
    feasible: list[TrialRecord]  # completed and within the limits
    best: TrialRecord | None  # the pick's trial
    front: list[TrialRecord]  # the Pareto front of the feasible trials
    stability: dict[str, Any] | None  # the pick's spread across seeds
    spread: float  # the measured range of utilities (1 when nothing was measured)
    config_source: str | None  # where the config comes from when no trial backs it
    portfolio: Portfolio | None = None  # the zero-shot portfolio, when it chose the pick
