"""Confidence that means something: the instant pick's confidence calibrated on the corpus.

The confidence of a pick made before any trial (``combine._confidence``) is a heuristic: the
portfolio-led pick's weighted share of wins on similar past tasks, or the prior's lead. It is
calibrated by leave-one-task-out over the knowledge base's corpus tasks: each is held out in
turn and picked for from the others (:func:`held_out_picks`, as the benchmark does), which
gives pairs (raw confidence, whether the pick was a best family of the held-out task).
:class:`ConfidenceCalibrator`, a scikit-learn estimator over a logistic regression (Platt
scaling), maps a raw confidence to the observed rate of right picks at that confidence. With
fewer than :data:`MIN_CALIBRATION_TASKS` held-out tasks a rate means little: the calibrator
then keeps the raw value, and the rationale says so.

The leave-one-task-out costs O(n^2) ranker fits (seconds for 35 tasks): too slow for
``archsearch recommend`` (5 s at most), so the pairs, and the calibrator fitted on them, are
computed offline (``python benchmarks/knowledge.py calibrate``) and shipped beside the matrix
(``matrix.calibration.json``), under a key of what they depend on (the matrix's scores and task
facts, the rules file, the families). When the key no longer matches (the matrix grew since),
the pairs are stale: the raw value is kept and the rationale says why.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archsearch.recommend.combine import (
    Recommendation,
    facts_for,
    instant_recommendation,
    recommend,
)
from archsearch.recommend.estimator import Estimator
from archsearch.recommend.knowledge import KnowledgeBase
from archsearch.recommend.portfolio import Portfolio
from archsearch.recommend.ranker import (
    PastTask,
    best_families,
    normalised_scores,
    past_evidence,
)
from archsearch.recommend.rules import RULES_FILE, Rule, apply_rules

# Fewer held-out tasks than this: a rate per confidence level is too noisy to state.
MIN_CALIBRATION_TASKS = 10
# The calibration file's format; bumped when the way held-out picks are made changes, which
# makes older pairs stale. 2: the instant pick is led by the zero-shot portfolio, and a pick
# tied with the best family is right. 3: the fitted calibrator ships beside the pairs. 4: the
# calibrator is a logistic regression (Platt scaling), not an isotonic one.
CALIBRATION_FORMAT = 4
CALIBRATE_COMMAND = "python benchmarks/knowledge.py calibrate"


@dataclass(frozen=True)
class HeldOutPick:
    """A corpus task held out and picked for from the other corpus tasks."""

    task: PastTask
    truth: dict[str, float]  # the held-out task's normalised test scores over the candidates
    instant: Recommendation  # as `archsearch recommend` makes it, from the others' matrix rows
    rules_only: Recommendation
    portfolio: Portfolio  # the others' zero-shot portfolio (its fallback: the prior's order)

    @property
    def best_families(self) -> list[str]:
        """The held-out task's best families: more than one where test scores tie."""
        return best_families(self.truth)

    @property
    def right(self) -> bool:
        """The instant pick was a best family of the held-out task."""
        return self.instant.family in self.best_families


def held_out_picks(corpus: Sequence[PastTask], families: Sequence[str], rules: list[Rule],
                   knowledge: str | None = None,
                   targets: Sequence[PastTask] | None = None) -> list[HeldOutPick]:
    """Each corpus task (measuring two or more candidates) held out and picked for from the
    others. A family a hard rule excludes on the held-out task is no candidate. ``targets``:
    pick for these tasks instead (the unseen sets), each from every corpus task of another
    name."""
    picks = []
    for held in corpus if targets is None else targets:
        facts = facts_for(held.meta_features, held.task_kind, held.constraints)
        excluded = apply_rules(rules, facts, list(families)).excluded
        candidates = sorted(f for f in held.scores if f in families and f not in excluded)
        truth = normalised_scores({f: held.scores[f] for f in candidates},
                                  held.metric.maximizes)
        if len(truth) < 2:
            continue
        others = [task for task in corpus if task.name != held.name]
        past = past_evidence([], held.meta_features, held.task_kind, candidates,
                             corpus=others, knowledge=knowledge)
        instant, portfolio = instant_recommendation(facts, candidates, held.metric, past,
                                                    others, rules)
        picks.append(HeldOutPick(held, truth, instant,
                                 recommend(facts, candidates, held.metric, [], rules),
                                 portfolio))
    return picks


class ConfidenceCalibrator(Estimator):
    """Raw confidence -> observed rate of right picks (scikit-learn estimator conventions).

    ``fit(X, y)``: ``X`` (n,) raw confidences of held-out picks, ``y`` (n,) 1 where the pick
    was a best family, else 0. With at least ``min_tasks`` pairs it fits Platt scaling, a
    logistic regression of ``y`` on ``X`` with an L2 penalty of strength ``1 / C``: the stated
    confidence is ``1 / (1 + exp(-(a * raw + b)))``. Two penalised parameters fall back to the
    overall rate of right picks where the raw value tells little; the isotonic regression used
    before (calibration format 3) fitted single picks at its ends on 20 held-out tasks (a raw
    0.6 right once was stated as 0.95) and scored worse than the raw value (RESULTS.md). When
    every pick was right, or none, there is nothing to regress on: every raw value maps to
    Laplace's rule of succession, ``(right + 1) / (n + 2)`` (none of 13 right: 0.07, not a
    certainty of 0). With fewer pairs, ``calibrated_`` is False and ``predict`` returns the
    raw values unchanged.

    The fit is scikit-learn's ``LogisticRegression``, made offline; ``predict`` evaluates its
    two coefficients itself, and :meth:`fitted_state` / :meth:`from_fitted_state` carry them
    in the shipped file, so that ``archsearch recommend`` imports no scikit-learn
    (:mod:`archsearch.recommend.estimator`).
    """

    def __init__(self, min_tasks: int = MIN_CALIBRATION_TASKS, C: float = 1.0) -> None:
        self.min_tasks = min_tasks
        self.C = C

    def fit(self, X: Any, y: Any) -> ConfidenceCalibrator:
        X = np.asarray(X, dtype=np.float64).ravel()
        y = np.asarray(y, dtype=np.float64).ravel()
        if len(X) != len(y):
            raise ValueError(f"X and y must have one entry per pick; got {len(X)} and {len(y)}")
        self.n_tasks_ = len(X)
        self.calibrated_ = self.n_tasks_ >= self.min_tasks
        self.logit_: tuple[float, float] | None = None  # (a, b) of a * raw + b
        if not self.calibrated_:
            return self
        if 0 < y.sum() < len(y):
            from sklearn.linear_model import LogisticRegression

            platt = LogisticRegression(C=self.C).fit(X[:, None], y)
            self.logit_ = (float(platt.coef_[0, 0]), float(platt.intercept_[0]))
        else:
            rate = (y.sum() + 1) / (len(y) + 2)
            self.logit_ = (0.0, float(np.log(rate / (1 - rate))))
        return self

    def predict(self, X: Any) -> np.ndarray:
        if not hasattr(self, "calibrated_"):
            raise ValueError("this ConfidenceCalibrator is not fitted yet; call fit(X, y) first")
        X = np.asarray(X, dtype=np.float64).ravel()
        if self.logit_ is None:
            return X.copy()
        a, b = self.logit_
        return 1.0 / (1.0 + np.exp(-(a * X + b)))

    def fitted_state(self) -> dict[str, Any]:
        """The parameters and the fit, as JSON."""
        if not hasattr(self, "calibrated_"):
            raise ValueError("this ConfidenceCalibrator is not fitted yet; call fit(X, y) first")
        return {"params": self.get_params(), "n_tasks": self.n_tasks_,
                "logit": None if self.logit_ is None else list(self.logit_)}

    @classmethod
    def from_fitted_state(cls, state: dict[str, Any]) -> ConfidenceCalibrator:
        """The calibrator :meth:`fitted_state` described, fitted, without fitting again."""
        calibrator = cls(**state["params"])
        calibrator.n_tasks_ = state["n_tasks"]
        calibrator.calibrated_ = state["logit"] is not None
        calibrator.logit_ = None if state["logit"] is None else tuple(state["logit"])
        return calibrator


def calibration_path(matrix: Path) -> Path:
    return matrix.with_name(f"{matrix.stem}.calibration.json")


def calibration_key(knowledge: KnowledgeBase, families: Sequence[str],
                    rules_file: Path = RULES_FILE) -> str:
    """A digest of what the held-out picks depend on: the matrix's scores, its tasks' facts,
    the rules file and the families."""
    facts = {t.id: [t.kind, t.metric.name, t.metric.direction, t.meta_features, t.constraints]
             for t in knowledge.tasks.values()}
    content = json.dumps({"scores": knowledge.scores(), "tasks": facts,
                          "rules": rules_file.read_text(encoding="utf-8"),
                          "families": sorted(families)}, sort_keys=True, default=str)
    return hashlib.sha256(content.encode()).hexdigest()[:16]


def write_calibration(knowledge: KnowledgeBase, families: Sequence[str], rules: list[Rule],
                      rules_file: Path = RULES_FILE) -> dict[str, Any]:
    """Compute the held-out picks and write their pairs, and the calibrator fitted on them,
    beside the matrix; returns what was written."""
    picks = held_out_picks(knowledge.past_tasks(), families, rules)
    calibrator = ConfidenceCalibrator().fit([p.instant.confidence for p in picks],
                                            [p.right for p in picks])
    content = {"format": CALIBRATION_FORMAT,
               "key": calibration_key(knowledge, families, rules_file),
               "families": sorted(families),
               "calibrator": calibrator.fitted_state(),
               "pairs": [{"task": p.task.name, "confidence": p.instant.confidence,
                          "right": p.right} for p in picks]}
    calibration_path(knowledge.source).write_text(json.dumps(content, indent=1) + "\n",
                                                  encoding="utf-8")
    return content


@dataclass(frozen=True)
class StatedConfidence:
    """The confidence an instant pick states, and the sentence that says how it was made."""

    value: float
    raw: float
    calibrated: bool
    n_tasks: int  # held-out corpus tasks behind the calibration (0: none read)
    sentence: str


def state_confidence(raw: float, knowledge: KnowledgeBase | None) -> StatedConfidence:
    """The calibrated confidence of an instant pick with raw confidence ``raw``, from the
    pairs shipped beside ``knowledge``'s matrix; the raw value, with the reason, when there
    are none, too few, or stale ones."""
    path = calibration_path(knowledge.source) if knowledge is not None else None
    if path is None or not path.is_file():
        return StatedConfidence(raw, raw, False, 0, "Confidence: not calibrated (no held-out "
                                "corpus tasks to calibrate on); the raw value is stated.")
    content = json.loads(path.read_text(encoding="utf-8"))
    pairs = content["pairs"]
    if (content.get("format") != CALIBRATION_FORMAT
            or content["key"] != calibration_key(knowledge, content["families"])):
        return StatedConfidence(raw, raw, False, 0, f"Confidence: not calibrated ({path.name} "
                                "was made on another matrix, rules file or calibration format; "
                                f"`{CALIBRATE_COMMAND}` makes it again); the raw value is "
                                "stated.")
    calibrator = ConfidenceCalibrator.from_fitted_state(content["calibrator"])
    if not calibrator.calibrated_:
        return StatedConfidence(raw, raw, False, len(pairs), (
            f"Confidence: not calibrated: only {len(pairs)} held-out corpus task(s), at least "
            f"{MIN_CALIBRATION_TASKS} are needed to calibrate; the raw value is stated."))
    value = round(float(calibrator.predict([raw])[0]), 3)
    rate = statistics.fmean(p["right"] for p in pairs)
    return StatedConfidence(value, raw, True, len(pairs), (
        f"Confidence: {value:.2f}, calibrated on {len(pairs)} held-out corpus tasks: the rate "
        f"at which instant picks stated at {raw:.2f} (the raw value) were a best family of the "
        f"held-out task (over all of them: {rate:.0%})."))


def reliability_table(stated: Sequence[float], right: Sequence[bool],
                      bins: int = 5) -> list[dict[str, Any]]:
    """Stated confidence against the observed rate of right picks, in ``bins`` equal bins
    over 0..1 (empty bins left out)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = [(s, r) for s, r in zip(stated, right, strict=True)
                  if low <= s < high or (high == 1.0 and s == 1.0)]
        if inside:
            rows.append({"bin": [round(float(low), 2), round(float(high), 2)],
                         "n": len(inside),
                         "stated": round(statistics.fmean(s for s, _ in inside), 3),
                         "observed": round(statistics.fmean(float(r) for _, r in inside), 3)})
    return rows


def expected_calibration_error(table: Sequence[dict[str, Any]]) -> float | None:
    """Mean |stated - observed| over a reliability table's bins, weighted by their picks."""
    total = sum(row["n"] for row in table)
    if not total:
        return None
    return round(sum(row["n"] * abs(row["stated"] - row["observed"]) for row in table) / total,
                 4)
