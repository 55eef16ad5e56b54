"""Combine rule priors with this task's measured trials into one ranked recommendation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from archsearch.recommend.rules import Rule, apply_rules, load_rules
from archsearch.store.records import TrialRecord
from archsearch.types import Metric, TrialStatus

# How much a rule prior can move a family against measurements: a prior weight of 1.5 is worth
# log(1.5) * PRIOR_SCALE ≈ 4% of the measured score range.
PRIOR_SCALE = 0.1


@dataclass(frozen=True)
class FamilyRank:
    family: str
    prior: float
    measured: float | None  # best validation score of the family, in the metric's own unit
    n_trials: int
    score: float  # combined, higher is better
    excluded_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "prior": self.prior, "measured": self.measured,
                "n_trials": self.n_trials, "score": self.score, "excluded_by": self.excluded_by}


@dataclass(frozen=True)
class Recommendation:
    family: str
    config: dict[str, Any]
    confidence: float
    rationale: list[str]
    ranking: list[FamilyRank] = field(default_factory=list)
    trial_number: int | None = None


def facts_for(meta_features: Mapping[str, Any], task_kind: str,
              constraints: Mapping[str, Any]) -> dict[str, Any]:
    """The flat fact table rules are evaluated on."""
    facts = dict(meta_features)
    facts["task"] = task_kind
    facts.update({k: v for k, v in constraints.items() if v is not None})
    return facts


def recommend(facts: Mapping[str, Any], families: list[str], metric: Metric,
              trials: list[TrialRecord], rules: list[Rule] | None = None) -> Recommendation:
    """Rank families: measured best scores decide, rule priors break near-ties and fill gaps."""
    priors = apply_rules(load_rules() if rules is None else rules, facts, families)
    usable = [t for t in trials if t.status == TrialStatus.COMPLETED.value
              and t.val_score is not None and math.isfinite(t.val_score)]
    best_by_family: dict[str, TrialRecord] = {}
    counts: dict[str, int] = {}
    for trial in usable:
        counts[trial.family] = counts.get(trial.family, 0) + 1
        held = best_by_family.get(trial.family)
        if held is None or metric.better(trial.val_score, held.val_score):
            best_by_family[trial.family] = trial
    measured = [metric.sign * t.val_score for t in best_by_family.values()]
    low, high = (min(measured), max(measured)) if measured else (0.0, 1.0)
    spread = (high - low) or 1.0
    ranking = []
    for family in families:
        prior_bonus = PRIOR_SCALE * math.log(priors.weights[family])
        best = best_by_family.get(family)
        if best is not None:
            score = (metric.sign * best.val_score - low) / spread + prior_bonus
        else:
            score = -1.0 + prior_bonus  # unmeasured families rank below every measured one
        ranking.append(FamilyRank(family, priors.weights[family],
                                  best.val_score if best else None, counts.get(family, 0),
                                  score, priors.excluded.get(family)))
    ranking.sort(key=lambda r: (r.excluded_by is None, r.score), reverse=True)
    top = ranking[0]
    best_trial = best_by_family.get(top.family)
    rationale = _rationale(priors.fired, ranking, metric, len(usable), best_trial)
    confidence = _confidence(ranking, len(usable))
    return Recommendation(top.family, dict(best_trial.config) if best_trial else {},
                          confidence, rationale, ranking,
                          best_trial.number if best_trial else None)


def _confidence(ranking: list[FamilyRank], n_measured: int) -> float:
    """0..1: grows with the lead over the runner-up and with the number of trials behind it."""
    if n_measured == 0 or len(ranking) < 2:
        return 0.2 if n_measured == 0 else 0.5
    lead = max(0.0, ranking[0].score - ranking[1].score)  # in units of the measured range
    support = 1.0 - math.exp(-ranking[0].n_trials / 3.0)
    return round(min(1.0, 0.3 + 0.5 * min(lead, 1.0)) * (0.5 + 0.5 * support), 3)


def _rationale(fired: list[Rule], ranking: list[FamilyRank], metric: Metric, n_measured: int,
               best: TrialRecord | None) -> list[str]:
    sentences = [f"Rule {rule.id}: {rule.says}" for rule in fired]
    if not fired:
        sentences.append("No rule of thumb applies to this data set; the choice rests on "
                         "measurement alone.")
    top = ranking[0]
    if best is None:
        sentences.append(f"No trial has been measured yet: {top.family} is the rules' prior "
                         "choice, to be checked by a search.")
        return sentences
    sentences.append(
        f"{top.family} reached the best validation {metric.name} ({best.val_score:.4g}) in "
        f"trial {best.number}; {top.n_trials} of the {n_measured} completed trials are "
        f"{top.family}."
    )
    runner = next((r for r in ranking[1:] if r.measured is not None and r.excluded_by is None),
                  None)
    if runner is not None:
        sentences.append(f"Runner-up: {runner.family} at {runner.measured:.4g} "
                         f"({runner.n_trials} trial(s)).")
    favoured = max(ranking, key=lambda r: r.prior)
    if favoured.prior > 1.0 and favoured.family != top.family:
        measured = (f"measured {favoured.measured:.4g}" if favoured.measured is not None
                    else "was not measured")
        sentences.append(f"The rules favoured {favoured.family} (prior x{favoured.prior:.2g}); "
                         f"measurement overrode them: it {measured}.")
    elif favoured.prior > 1.0:
        sentences.append(f"Measurement agrees with the rules, which favoured {top.family}.")
    for rank in ranking:
        if rank.excluded_by:
            sentences.append(f"{rank.family} was excluded by rule {rank.excluded_by}.")
    return sentences
