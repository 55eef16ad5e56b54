"""Which trials are re-scored by k-fold cross-validation on small data, and what that costs:
pure decisions, no Ray (:mod:`archsearch.search.ray_backend.finalists` runs the folds as Ray
tasks).

A family is *competitive* when its best validation score is within two standard errors of
the best family's: on ten validation series, 0.8 and 0.9 accuracy are one series apart and
neither can be told better, so both are finalists. The standard error is that of the best
score on ``n_val`` series: binomial for accuracy (Agresti-Coull, so that 100% on ten series
still has an error), and for a mean squared error the chi-square one, ``mse * sqrt(2 / n)``
(the errors taken as Gaussian).

Under a time budget the trials stop early enough for every competitive family's finalist to
be cross-validated (:meth:`FinalistPlan.seconds_needed`, up to half of the time the search
had), and when the time left is still short every finalist gets fewer folds
(:meth:`FinalistPlan.pick`), instead of the costliest of them being skipped for want of time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from archsearch.types import Metric, TrialOutcome

# What a fold costs besides its training: the cost measurement, a validation per round, the
# final test and the Ray task's start (seconds, measured here at 3-5 s on small data).
FOLD_OVERHEAD_SECONDS = 5.0
STANDARD_ERRORS = 2.0  # how far below the best family's score a family is still competitive
MIN_FOLDS = 3  # fewer folds for every finalist before a competitive family goes unscored


def standard_error(metric: Metric, score: float, n_val: int) -> float:
    """The standard error of a validation ``score`` measured on ``n_val`` series."""
    n = max(1, n_val)
    if metric.maximizes:  # accuracy: a binomial proportion, Agresti-Coull adjusted
        p = (score * n + 2.0) / (n + 4.0)
        return math.sqrt(p * (1.0 - p) / n)
    return abs(score) * math.sqrt(2.0 / n)  # a mean of n squared Gaussian errors


@dataclass(frozen=True)
class FinalistPlan:
    """How finalists are cross-validated: up to ``k`` folds each, ``slots`` folds at a time,
    the best trial of at most ``n_families`` competitive families, scored on ``n_val`` series;
    the trials leave them at most ``max_seconds`` before the deadline (see
    :meth:`seconds_needed`)."""

    k: int
    n_families: int
    slots: int
    n_val: int
    max_seconds: float = math.inf

    @property
    def min_k(self) -> int:
        return min(self.k, MIN_FOLDS)

    def fold_seconds(self, outcome: TrialOutcome) -> float:
        """One fold: the trial's training up to its best round (see ``refit_spec``), plus
        :data:`FOLD_OVERHEAD_SECONDS`."""
        per_round = outcome.train_seconds / max(1, outcome.epochs_run)
        return per_round * (outcome.best_epoch or outcome.epochs_run) + FOLD_OVERHEAD_SECONDS

    def seconds(self, outcome: TrialOutcome, k: int) -> float:
        """Wall seconds of one finalist's ``k`` folds, ``slots`` at a time."""
        return k * self.fold_seconds(outcome) / max(1, self.slots)

    def candidates(self, completed: dict[int, TrialOutcome], families: dict[int, str],
                   metric: Metric) -> list[tuple[int, TrialOutcome]]:
        """The best trial of each competitive family, best first, at most ``n_families``."""
        best: dict[str, tuple[int, TrialOutcome]] = {}
        for number, outcome in sorted(completed.items()):  # a tie goes to the first trial
            held = best.get(families[number])
            if held is None or metric.better(outcome.val_score, held[1].val_score):
                best[families[number]] = (number, outcome)
        ranked = sorted(best.values(), key=lambda item: metric.sign * item[1].val_score,
                        reverse=True)
        if not ranked:
            return []
        top = ranked[0][1].val_score
        margin = STANDARD_ERRORS * standard_error(metric, top, self.n_val)
        return [(number, outcome) for number, outcome in ranked
                if metric.sign * (top - outcome.val_score) <= margin][:self.n_families]

    def pick(self, completed: dict[int, TrialOutcome], families: dict[int, str],
             metric: Metric, seconds_left: float) -> tuple[int, list[tuple[int, TrialOutcome]]]:
        """(folds, finalists): every candidate, with as many folds (``k`` down to
        :data:`MIN_FOLDS`) as let all of them finish in ``seconds_left``, since one fold fewer
        costs less than a competitive family judged on one split; when even that is too
        long, those that fit at the fewest folds, in rank order (a costly one that does not
        fit is skipped, a cheaper one after it may still fit). The same k for all, so that
        their scores compare."""
        candidates = self.candidates(completed, families, metric)
        for k in range(self.k, self.min_k - 1, -1):
            if sum(self.seconds(outcome, k) for _, outcome in candidates) <= seconds_left:
                return k, candidates
        chosen, spent = [], 0.0
        for number, outcome in candidates:
            cost = self.seconds(outcome, self.min_k)
            if spent + cost <= seconds_left:
                chosen.append((number, outcome))
                spent += cost
        return self.min_k, chosen

    def seconds_needed(self, completed: dict[int, TrialOutcome], families: dict[int, str],
                       metric: Metric) -> float:
        """What cross-validating every candidate with ``k`` folds would take now, at most
        ``max_seconds``."""
        needed = sum(self.seconds(outcome, self.k)
                     for _, outcome in self.candidates(completed, families, metric))
        return min(needed, self.max_seconds)


def fold_cpus(folds: int, cpus: float, free_cpus: float,
              widens: Sequence[bool] | None = None) -> list[float]:
    """The CPUs of each of ``folds`` fold tasks, in the order they are submitted, when
    ``free_cpus`` are free for them: ``cpus`` each (a trial's), so that ``free_cpus // cpus``
    run at a time, except the last wave's folds when they are fewer than that: they share the
    CPUs the others' end leaves idle (the lone fifth fold of five on two CPUs trains on both,
    with two threads, instead of alone on one). ``widens`` (one flag a fold, all by default):
    a fold whose family's training gains nothing reliable from threads keeps ``cpus``."""
    slots = max(1, math.floor(free_cpus / cpus))
    last_wave = folds % slots
    shares = [cpus] * (folds - last_wave) + [cpus * (slots // max(1, last_wave))] * last_wave
    if widens is None:
        return shares
    return [share if widen else cpus for share, widen in zip(shares, widens, strict=True)]
