"""The decisions of one search, without Ray: what the next trial is (and under which time
limit), whether a result stops it (Optuna's pruner), and what its end means. The Ray Tune
adapters in ``ray_backend`` only relay to it, so it is tested without a Ray runtime."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from archsearch.search.budget import MIN_TRIAL_SECONDS, training_seconds_left, within_time_left
from archsearch.search.observer import SEARCH_STOPPED, SNAPSHOT_FILE, SearchObserver
from archsearch.search.optuna_bridge import OptunaBridge
from archsearch.search.selection import FinalistPlan
from archsearch.search.settings import FinishedTrial
from archsearch.trial import TrialSpec, snapshot_seconds
from archsearch.types import (
    Constraints,
    CostMeasurement,
    EpochReport,
    TrialOutcome,
    TrialStatus,
)

EVENT = "archsearch_event"  # the key of a trial's reports that says which event it is


def _nested(result: dict[str, Any], key: str) -> dict[str, Any] | None:
    """``result[key]``: Ray Tune hands schedulers results flattened to ``key/field`` entries."""
    if isinstance(result.get(key), dict):
        return result[key]
    prefix = key + "/"
    fields = {k[len(prefix):]: v for k, v in result.items() if k.startswith(prefix)}
    return fields or None


def outcome_to_dict(outcome: TrialOutcome) -> dict[str, Any]:
    """A trial's final report (plain values: it travels through Ray Tune's results)."""
    return {**dataclasses.asdict(outcome), "status": outcome.status.value}


def outcome_from_dict(values: dict[str, Any]) -> TrialOutcome:
    cost = values.get("cost")
    return TrialOutcome(**{**values, "status": TrialStatus(values["status"]),
                           "cost": CostMeasurement(**cost) if cost else None})


class Coordinator:
    """Shared state of one search. A backend drives it: Ray Tune through the adapters in
    ``ray_backend``, or :mod:`archsearch.search.simulated`, which replays learning curves.
    A resumed search brings its earlier sittings' completed trials (``finished``): the finalists
    are chosen among them too, and under a time budget their folds are planned for."""

    def __init__(self, bridge: OptunaBridge, observer: SearchObserver, constraints: Constraints,
                 seed: int, stop: threading.Event | None = None,
                 finished: tuple[FinishedTrial, ...] = ()) -> None:
        self.bridge = bridge
        self.observer = observer
        self.constraints = constraints
        self.seed = seed
        self.numbers: dict[str, int] = {}
        self.ended: set[str] = set()
        self.costed: set[str] = set()
        self.specs: dict[int, TrialSpec] = {}
        self.completed: dict[int, TrialOutcome] = {}
        self.cross_validated: dict[int, int] = {}  # folds of finalists re-scored before a resume
        self.trials_end: float | None = None  # clock() when a time budget stops trials
        # On small data: how finalists are cross-validated, and by when (clock()); the trials
        # then end early enough for the finalists' folds.
        self.finalists: FinalistPlan | None = None
        self.finalists_deadline: float | None = None
        self.clock: Callable[[], float] = time.time  # a simulated backend brings its own
        # Set from outside (a cancel read by the driver's lease keeper): no trial starts, and a
        # running one stops at its next result. Ctrl-C stops a search at once; this makes sure
        # it also winds down should that signal be lost.
        self.stop = stop or threading.Event()
        self.snapshot_every_s = snapshot_seconds()
        for trial in finished:
            self.specs[trial.number] = TrialSpec(trial.arch, trial.train, constraints,
                                                 seed + trial.number)
            self.completed[trial.number] = trial.outcome
            if trial.cv_folds:
                self.cross_validated[trial.number] = trial.cv_folds

    def suggest(self, tune_trial_id: str) -> dict[str, Any] | None:
        """The next trial's config; None once too little of a time budget is left for a trial
        to finish: no further trial will come (time only runs out)."""
        seconds_left = self.seconds_left()
        if self.stop.is_set() or (seconds_left is not None and seconds_left < MIN_TRIAL_SECONDS):
            return None
        asked = self.bridge.ask(tune_trial_id)
        number = asked.trial.number
        self.numbers[tune_trial_id] = number
        constraints = within_time_left(self.constraints, seconds_left)
        # The same time left as a clock time too: a trial whose worker starts late (a busy
        # machine) still stops training in time to report, instead of being cut off and lost.
        train_until = (None if seconds_left is None
                       else self.clock() + training_seconds_left(seconds_left))
        self.specs[number] = TrialSpec(asked.arch, asked.train, constraints, self.seed + number,
                                       train_until)
        self.observer.on_trial_start(number, asked.arch, asked.train)
        rerun_of = asked.rerun_of
        return {
            "number": number,
            "arch": {"family": asked.arch.family, "hparams": dict(asked.arch.hparams)},
            "train": dataclasses.asdict(asked.train),
            "constraints": constraints.to_dict(),
            "seed": self.seed + number,
            "train_until": train_until,
            "snapshot_every_s": self.snapshot_every_s,
            "resume_from": (None if rerun_of is None
                            else self.observer.adopt_snapshot(number, rerun_of)),
        }

    def families(self) -> dict[int, str]:
        """Each trial's family, by trial number."""
        return {number: spec.arch.family for number, spec in self.specs.items()}

    def seconds_left(self) -> float | None:
        """Seconds until the trials must end (None: no time budget): the time budget's end for
        trials, or earlier when the finalists' folds, as the completed trials now stand, need
        more of the time before their deadline than the trials left them."""
        if self.trials_end is None:
            return None
        end = self.trials_end
        if self.finalists is not None and self.finalists_deadline is not None:
            needed = self.finalists.seconds_needed(self.completed, self.families(),
                                                   self.bridge.metric)
            end = min(end, self.finalists_deadline - needed)
        return end - self.clock()

    def result(self, tune_trial_id: str, result: dict[str, Any]) -> bool:
        """Relay one result; True when the trial must stop (pruned, or the search stopped)."""
        if tune_trial_id in self.ended:
            return True  # pruned already: epochs it ran before Tune stopped it are not its own
        if self.stop.is_set():
            self._end(tune_trial_id, None, None)
            return True
        number = self.numbers[tune_trial_id]
        cost = _nested(result, "cost")
        if cost and tune_trial_id not in self.costed:
            self.costed.add(tune_trial_id)
            measured = CostMeasurement(**cost)
            self.bridge.note_cost(tune_trial_id, measured)
            self.observer.on_trial_cost(number, measured, result.get("node_id"))
        if result.get(EVENT) != "epoch":
            return False
        report = EpochReport(result["epoch"], result["train_loss"], result["val_score"],
                             result["elapsed_s"])
        self.observer.on_epoch(number, report)
        if self.bridge.report(tune_trial_id, report.epoch, report.val_score, report.elapsed_s):
            self._end(tune_trial_id, None, None, pruned_at=report.epoch)
            return True
        return False

    def complete(self, tune_trial_id: str, result: dict[str, Any] | None,
                 checkpoint_dir: str | None, error: str | None = None) -> None:
        outcome = None
        if result and result.get(EVENT) == "final":
            outcome = outcome_from_dict(result["outcome"])
        elif error is not None:
            outcome = TrialOutcome(TrialStatus.FAILED, None, 0, None, None, None, 0.0, error)
        self._end(tune_trial_id, outcome, checkpoint_dir)

    def snapshot(self, tune_trial_id: str, checkpoint_dir: str) -> None:
        """A running trial saved its training state (a checkpoint that is no trial's result)."""
        snapshot_file = os.path.join(checkpoint_dir, SNAPSHOT_FILE)
        if (tune_trial_id in self.numbers and tune_trial_id not in self.ended
                and os.path.isfile(snapshot_file)):
            self.observer.on_trial_snapshot(self.numbers[tune_trial_id], snapshot_file)

    def retry(self, tune_trial_id: str, reason: str) -> None:
        """A failed attempt that Ray runs again (FailureConfig.max_failures)."""
        if tune_trial_id in self.numbers and tune_trial_id not in self.ended:
            self.observer.on_trial_retry(self.numbers[tune_trial_id], reason)

    def _end(self, tune_trial_id: str, outcome: TrialOutcome | None, checkpoint_dir: str | None,
             pruned_at: int | None = None) -> None:
        if tune_trial_id in self.ended or tune_trial_id not in self.numbers:
            return
        self.ended.add(tune_trial_id)
        number = self.numbers[tune_trial_id]
        if pruned_at is not None:
            self.bridge.tell(tune_trial_id, TrialStatus.PRUNED, None)
            self.observer.on_trial_pruned(number, pruned_at)
            return
        if outcome is None:  # stopped without a final report (time budget, interruption)
            why = SEARCH_STOPPED if self.stop.is_set() else "stopped by Ray Tune before it finished"
            outcome = TrialOutcome(TrialStatus.FAILED, None, 0, None, None, None, 0.0, why)
        self.bridge.tell(tune_trial_id, outcome.status, outcome.val_score, outcome.cost)
        if outcome.status is TrialStatus.COMPLETED and outcome.val_score is not None:
            self.completed[number] = outcome
        self.observer.on_trial_end(number, outcome, checkpoint_dir)
