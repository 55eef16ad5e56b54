"""Combine the evidence into one ranked recommendation.

Three sources, each updating the one before:

1. **Rules** (``rules.yaml``): a prior weight per family; hard rules exclude families.
2. **Past tasks** (:mod:`archsearch.recommend.ranker`): the normalised score similar past tasks
   predict for each family, trusted by how many tasks back it. Before any measurement the
   belief is ``log(prior) + trust * DATA_LOGODDS * weight * (past - 0.5)``. ``trust`` is
   calibrated on the past tasks themselves (:func:`calibrate_trust`): each is held out in
   turn and predicted from the others, so data outweighs the rules of thumb only as far as it
   has picked clearly better than they did on this database's tasks.
   Before any measurement, when past tasks lie near enough, the **zero-shot portfolio**
   (:mod:`archsearch.recommend.portfolio`) leads: the instant pick is its first family and the
   ranking runs through the portfolio before the belief orders the rest
   (:func:`instant_recommendation`); its raw confidence is the first family's similarity-
   weighted share of wins on those tasks.
3. **This task's measured trials**, under the user's constraints: only completed trials that
   meet every constraint count (an infeasible trial never wins). Their best scores, normalised
   over the measured range (errors on a log scale: :meth:`Metric.utility`), decide; the
   belief from 1 and 2 breaks near-ties (``PRIOR_SCALE`` of it) and orders the families not
   measured. Where finalists were cross-validated (small data), their k-fold means rank above
   every single-split score.

The rationale (:mod:`archsearch.recommend.rationale`) says which rules fired, what past data
said and whether it overrode the rules, whether measurement overrode both, how many trials
back the pick, how close the runner-up is, the Pareto front under the constraints, and the
spread across seeds where a configuration was trained more than once.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from archsearch.recommend.evidence import UNCALIBRATED, DataTrust, Evidence, FamilyRank
from archsearch.recommend.pareto import pareto_front
from archsearch.recommend.portfolio import Portfolio, zero_shot_portfolio
from archsearch.recommend.ranker import HeldOutTask, PastEvidence, PastTask
from archsearch.recommend.rationale import rationale
from archsearch.recommend.rules import Priors, Rule, apply_rules, load_rules
from archsearch.store.records import TrialRecord
from archsearch.types import COST_LIMITS, Constraints, Metric, TrialStatus, cost_violations

# How much the prior belief (rules + past data) can move a family against measurements: a
# prior weight of 1.5 is worth log(1.5) * PRIOR_SCALE ≈ 4% of the measured score range.
PRIOR_SCALE = 0.1
# Before measurement: a past-data score gap of 1 (best vs worst family on similar tasks),
# fully trusted, is worth a prior factor of exp(1.2) ≈ 3.3.
DATA_LOGODDS = 1.2
# Candidate trust factors on DATA_LOGODDS: 0 = the rules alone, 16 = past data all but decides.
TRUST_FACTORS = (0.0, 0.5, 1.0, 2.0, 4.0, 16.0)
# An instant pick (nothing measured) states at most this confidence before calibration.
MAX_INSTANT_CONFIDENCE = 0.6



@dataclass(frozen=True)
class Recommendation:
    family: str
    config: dict[str, Any]
    confidence: float
    rationale: list[str]
    ranking: list[FamilyRank] = field(default_factory=list)
    trial_number: int | None = None
    pareto: list[int] = field(default_factory=list)  # feasible trials on the quality/cost front
    stability: dict[str, Any] | None = None  # spread of the pick's config across seeds
    config_source: str | None = None  # where ``config`` comes from when no trial backs it
    trust: DataTrust | None = None  # None: past data not consulted

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, "config": self.config or None,
                "confidence": self.confidence, "rationale": self.rationale,
                "ranking": [r.to_dict() for r in self.ranking],
                "trial_number": self.trial_number, "pareto": self.pareto,
                "stability": self.stability, "config_source": self.config_source,
                "trust": self.trust.to_dict() if self.trust else None}


def facts_for(meta_features: Mapping[str, Any], task_kind: str,
              constraints: Mapping[str, Any]) -> dict[str, Any]:
    """The flat fact table rules are evaluated on: meta-features, the task kind, the set
    constraints, and derived facts (``attention_scores_mb``: one head's fp32 T x T attention
    matrix at batch 1 if materialised; ``attention_share_of_memory``: that over
    ``max_memory_mb``)."""
    facts = dict(meta_features)
    facts["task"] = task_kind
    facts.update({k: v for k, v in constraints.items() if v is not None})
    seq_len = facts.get("seq_len")
    if isinstance(seq_len, (int, float)) and seq_len > 0:
        facts["attention_scores_mb"] = seq_len * seq_len * 4 / 2**20
        memory = facts.get("max_memory_mb")
        if isinstance(memory, (int, float)) and memory > 0:
            facts["attention_share_of_memory"] = facts["attention_scores_mb"] / memory
    return facts


def _limits(facts: Mapping[str, Any],
            constraints: Constraints | Mapping[str, Any] | None) -> dict[str, float]:
    if isinstance(constraints, Constraints):
        source: Mapping[str, Any] = constraints.to_dict()
    else:
        source = constraints if constraints is not None else facts
    return {key: float(source[key]) for key, _, _ in COST_LIMITS
            if isinstance(source.get(key), (int, float)) and not isinstance(source[key], bool)}


def violations(trial: TrialRecord, limits: Mapping[str, float]) -> list[str]:
    """Why a measured trial breaks the constraints (:func:`archsearch.types.cost_violations`)."""
    return cost_violations(limits, {cost: getattr(trial, cost) for _, cost, _ in COST_LIMITS})


def recommend(facts: Mapping[str, Any], families: list[str], metric: Metric,
              trials: list[TrialRecord], rules: list[Rule] | None = None,
              past: PastEvidence | None = None,
              constraints: Constraints | Mapping[str, Any] | None = None,
              portfolio: Portfolio | None = None) -> Recommendation:
    """Rank ``families`` and pick one configuration (see the module docstring).

    ``constraints`` default to the constraint keys in ``facts`` (:func:`facts_for` puts them
    there); ``past`` is the ranker's evidence (None: not consulted); ``portfolio``, when used,
    leads the ranking while nothing is measured (:func:`instant_recommendation` makes it).
    """
    rules = load_rules() if rules is None else rules
    priors = apply_rules(rules, facts, families)
    trust = (calibrate_trust(past.held_out, rules, families)
             if past is not None and past.available else None)
    limits = _limits(facts, constraints)
    completed = [t for t in trials if t.status == TrialStatus.COMPLETED.value
                 and t.val_score is not None and math.isfinite(t.val_score)]
    feasible = [t for t in completed if not violations(t, limits)]
    broken = [t for t in completed if violations(t, limits)]
    best_by_family: dict[str, TrialRecord] = {}
    counts: dict[str, int] = {}
    for trial in feasible:
        counts[trial.family] = counts.get(trial.family, 0) + 1
        held = best_by_family.get(trial.family)
        if held is None or metric.better(trial.val_score, held.val_score):
            best_by_family[trial.family] = trial
    measured = [metric.utility(t.val_score) for t in best_by_family.values()]
    low, high = (min(measured), max(measured)) if measured else (0.0, 1.0)
    spread = (high - low) or 1.0
    belief = {family: _belief(family, priors, past, trust) for family in families}
    ranking = []
    for family in families:
        best = best_by_family.get(family)
        if not measured:
            score = belief[family]
        elif best is not None:
            score = (metric.utility(best.val_score) - low) / spread + PRIOR_SCALE * belief[family]
        else:
            score = -1.0 + PRIOR_SCALE * belief[family]  # below every measured family
        has_past = past is not None and family in past.scores
        ranking.append(FamilyRank(
            family, priors.weights[family], best.val_score if best else None,
            counts.get(family, 0), score, priors.excluded.get(family),
            past.scores[family] if has_past else None,
            round(past.weight(family), 3) if has_past else 0.0,
            sum(1 for t in broken if t.family == family),
            best is not None and best.cv_score is not None))
    # Cross-validated finalists (small data) rank above families measured on one validation
    # split: a single small split's best score is an optimistic, noisy maximum.
    # Nothing measured: the zero-shot portfolio's families lead, in the order chosen.
    chosen = portfolio.families if portfolio is not None and not measured else ()
    lead = {family: len(chosen) - i for i, family in enumerate(chosen)}
    ranking.sort(key=lambda r: (r.excluded_by is None, r.cross_validated,
                                lead.get(r.family, 0), r.score), reverse=True)
    top = ranking[0]
    led = portfolio if top.family in lead else None
    best_trial = best_by_family.get(top.family)
    front = _pareto(feasible, metric)
    stability = _stability(best_trial, feasible, metric, spread)
    config, source = {}, None
    if best_trial is not None:
        config = dict(best_trial.config)
    elif past is not None and top.family in past.configs:
        config, source = dict(past.configs[top.family]), past.config_sources[top.family]
    sentences = rationale(Evidence(priors, ranking, belief, metric, past, trust, limits,
                                   completed, feasible, best_trial, front, stability, spread,
                                   source, led))
    return Recommendation(top.family, config, _confidence(ranking, len(feasible), past,
                                                          stability, spread, led),
                          sentences, ranking, best_trial.number if best_trial else None,
                          sorted(t.number for t in front), stability, source, trust)


def instant_recommendation(facts: Mapping[str, Any], families: list[str], metric: Metric,
                           past: PastEvidence | None, past_tasks: list[PastTask],
                           rules: list[Rule] | None = None,
                           constraints: Constraints | Mapping[str, Any] | None = None
                           ) -> tuple[Recommendation, Portfolio]:
    """The pick before any trial, and the search's initial design: the belief (rules and the
    ranker over ``past``) orders the families, the zero-shot portfolio of ``past_tasks``
    (similarity-weighted; their hard rules applied) is chosen over that order, and, when past
    tasks lie near enough for one, it leads the ranking. ``facts`` (:func:`facts_for`) carry
    the task's meta-features and kind."""
    rules = load_rules() if rules is None else rules
    prior = recommend(facts, families, metric, [], rules, past, constraints)
    portfolio = zero_shot_portfolio(past_tasks, facts, facts["task"], prior.ranking)
    if not portfolio.used:
        return prior, portfolio
    return recommend(facts, families, metric, [], rules, past, constraints, portfolio), portfolio


def _belief(family: str, priors: Priors, past: PastEvidence | None,
            trust: DataTrust | None) -> float:
    """Log prior weight of the rules, updated by past data."""
    value = math.log(priors.weights[family])
    if past is not None and trust is not None and family in past.scores:
        value += trust.factor * _data_shift(past.scores[family], past.weight(family))
    return value


def _data_shift(score: float, weight: float) -> float:
    """What past data adds to a family's log prior at trust 1: its predicted normalised score
    around the middle, scaled by how many tasks back it."""
    return DATA_LOGODDS * weight * (score - 0.5)


def calibrate_trust(held_out: list[HeldOutTask], rules: list[Rule],
                    families: list[str]) -> DataTrust:
    """How far to trust past data, from the held-out past tasks.

    For each factor of :data:`TRUST_FACTORS` the instant pick is made on every held-out task
    (among the families it measured, as :func:`recommend` would make it) and scored by its
    regret (1 - the picked family's normalised measured score). Past data must earn its
    weight: a factor is eligible only when its mean gain over the rules alone (factor 0)
    exceeds one standard error of that gain, since the lowest of six noisy means over a dozen
    tasks is often luck (the one-standard-error rule). The eligible factor with the lowest mean
    regret is used, the smaller on a tie; 0 when none is eligible. With no held-out task the
    factor is 1 (uncalibrated)."""
    regrets: dict[float, list[float]] = {factor: [] for factor in TRUST_FACTORS}
    for case in held_out:
        task = case.task
        priors = apply_rules(rules, facts_for(task.meta_features, task.task_kind,
                                              task.constraints), families)
        candidates = [f for f in families if f in case.truth and f not in priors.excluded]
        if len(candidates) < 2:
            continue
        prior = [math.log(priors.weights[f]) for f in candidates]
        shift = [_data_shift(case.scores[f], case.weights[f]) if f in case.scores else 0.0
                 for f in candidates]
        for factor, values in regrets.items():
            belief = [p + factor * d for p, d in zip(prior, shift, strict=True)]
            values.append(1.0 - case.truth[candidates[belief.index(max(belief))]])
    rules_only = regrets[0.0]
    n_tasks = len(rules_only)
    if n_tasks == 0:
        return UNCALIBRATED
    mean = {factor: statistics.fmean(values) for factor, values in regrets.items()}
    supported = [0.0]
    for factor, values in regrets.items():
        gain = [r - d for r, d in zip(rules_only, values, strict=True)]
        error = statistics.stdev(gain) / math.sqrt(n_tasks) if n_tasks > 1 else math.inf
        if statistics.fmean(gain) > error:
            supported.append(factor)
    factor = min(supported, key=lambda f: (round(mean[f], 9), f))
    return DataTrust(factor, mean, n_tasks)


def _pareto(trials: list[TrialRecord], metric: Metric) -> list[TrialRecord]:
    """Trials not dominated in (quality, latency) or in (quality, parameters)."""
    front: dict[int, TrialRecord] = {}
    for attr in ("latency_ms", "params"):
        measured = [t for t in trials if getattr(t, attr) is not None]
        for trial in pareto_front(measured, lambda t, a=attr: getattr(t, a),
                                  lambda t: metric.sign * t.val_score):
            front[trial.number] = trial
    return list(front.values())


def _config_key(trial: TrialRecord) -> str:
    config = trial.config or {}
    return json.dumps({"family": trial.family, "model": config.get("model", config),
                       "train": config.get("train")}, sort_keys=True, default=str)


def _stability(best: TrialRecord | None, feasible: list[TrialRecord], metric: Metric,
               spread: float) -> dict[str, Any] | None:
    """The spread of the pick's configuration where it was trained more than once (each trial
    has its own seed); None when it was trained once."""
    if best is None:
        return None
    key = _config_key(best)
    same = [t for t in feasible if _config_key(t) == key]
    if len(same) < 2:
        return None
    scores = [t.val_score for t in same]
    utilities = [metric.utility(score) for score in scores]
    return {"trials": sorted(t.number for t in same), "n": len(same), "min": min(scores),
            "max": max(scores), "std": statistics.stdev(scores),
            "range_share": (max(utilities) - min(utilities)) / spread}


def _confidence(ranking: list[FamilyRank], n_feasible: int, past: PastEvidence | None,
                stability: dict[str, Any] | None, spread: float,
                portfolio: Portfolio | None) -> float:
    """0..1. Measured: grows with the lead over the runner-up (in units of the measured range)
    and with the trials behind the pick, shrinks when seeds disagree by more than the lead.
    Not measured: at most :data:`MAX_INSTANT_CONFIDENCE`; led by the portfolio, its first
    family's weighted share of wins on the past tasks; else from the lead of the prior belief
    and the weight of past data."""
    top = ranking[0]
    runner = next((r for r in ranking[1:] if r.excluded_by is None), None)
    if n_feasible == 0 and portfolio is not None and portfolio.win_share is not None:
        return round(min(MAX_INSTANT_CONFIDENCE, portfolio.win_share), 3)
    if n_feasible == 0:
        lead = max(0.0, top.score - runner.score) if runner else 1.0
        data = top.past_weight if past is not None and past.available else 0.0
        return round(min(MAX_INSTANT_CONFIDENCE,
                         0.15 + 0.35 * (1 - math.exp(-lead)) + 0.1 * data), 3)
    if runner is None:
        return 0.5
    lead = max(0.0, top.score - runner.score)
    support = 1.0 - math.exp(-top.n_trials / 3.0)
    confidence = min(1.0, 0.3 + 0.5 * min(lead, 1.0)) * (0.5 + 0.5 * support)
    if stability is not None and stability["range_share"] > lead:
        confidence *= 0.8
    return round(confidence, 3)


