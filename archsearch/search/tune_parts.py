"""Ray Tune adapters: the trainable, a Searcher over the Optuna study, a scheduler that lets
Optuna's pruner stop trials, and a callback that relays events. All Ray calls live here and in
``runtime.py`` so that Ray's moving API touches two files only."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import Any

import ray
import ray.cloudpickle as cloudpickle
import torch
from ray import tune
from ray.exceptions import RayActorError, RayTaskError
from ray.tune import Callback, Checkpoint
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from archsearch.data import PreparedData
from archsearch.search.observer import SearchObserver
from archsearch.search.optuna_bridge import OptunaBridge
from archsearch.trial import TrialSpec, run_trial
from archsearch.types import (
    ArchConfig,
    Constraints,
    CostMeasurement,
    EpochReport,
    TrainConfig,
    TrialOutcome,
    TrialStatus,
)

MODEL_FILE = "model.pt"
EVENT = "archsearch_event"


def trainable(config: dict[str, Any], data: PreparedData) -> None:
    """Ray Tune function trainable: one trial. ``data`` comes from the object store once."""
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    torch.set_num_threads(max(1, int(cpus)))
    spec = TrialSpec(
        arch=ArchConfig(config["arch"]["family"], config["arch"]["hparams"]),
        train=TrainConfig(**config["train"]),
        constraints=Constraints(**config["constraints"]),
        seed=config["seed"],
    )
    cost_fields: dict[str, Any] = {}

    def on_cost(cost: CostMeasurement) -> None:
        cost_fields["cost"] = dataclasses.asdict(cost)
        cost_fields["node_id"] = ray.get_runtime_context().get_node_id()

    def on_epoch(report: EpochReport) -> None:
        tune.report({EVENT: "epoch", **dataclasses.asdict(report), **cost_fields})

    result = run_trial(spec, data, on_epoch, on_cost)
    final = {EVENT: "final", "outcome": _outcome_to_dict(result.outcome)}
    if result.state_dict is None:
        tune.report(final)
        return
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(result.state_dict, os.path.join(tmp, MODEL_FILE))
        tune.report(final, checkpoint=Checkpoint.from_directory(tmp))


def _outcome_to_dict(outcome: TrialOutcome) -> dict[str, Any]:
    values = dataclasses.asdict(outcome)
    values["status"] = outcome.status.value
    return values


def _nested(result: dict[str, Any], key: str) -> dict[str, Any] | None:
    """``result[key]``: Ray Tune hands schedulers results flattened to ``key/field`` entries."""
    if isinstance(result.get(key), dict):
        return result[key]
    prefix = key + "/"
    fields = {k[len(prefix):]: v for k, v in result.items() if k.startswith(prefix)}
    return fields or None


def outcome_from_dict(values: dict[str, Any]) -> TrialOutcome:
    cost = values.get("cost")
    return TrialOutcome(**{**values, "status": TrialStatus(values["status"]),
                           "cost": CostMeasurement(**cost) if cost else None})


class Coordinator:
    """Shared state of one search; the Searcher, scheduler and callback below delegate here."""

    def __init__(self, bridge: OptunaBridge, observer: SearchObserver, constraints: Constraints,
                 seed: int) -> None:
        self.bridge = bridge
        self.observer = observer
        self.constraints = constraints
        self.seed = seed
        self.numbers: dict[str, int] = {}
        self.ended: set[str] = set()
        self.costed: set[str] = set()
        self.specs: dict[int, TrialSpec] = {}
        self.completed: dict[int, TrialOutcome] = {}

    def suggest(self, tune_trial_id: str) -> dict[str, Any]:
        asked = self.bridge.ask(tune_trial_id)
        number = asked.trial.number
        self.numbers[tune_trial_id] = number
        self.specs[number] = TrialSpec(asked.arch, asked.train, self.constraints,
                                       self.seed + number)
        self.observer.on_trial_start(number, asked.arch, asked.train)
        return {
            "number": number,
            "arch": {"family": asked.arch.family, "hparams": dict(asked.arch.hparams)},
            "train": dataclasses.asdict(asked.train),
            "constraints": self.constraints.to_dict(),
            "seed": self.seed + number,
        }

    def result(self, tune_trial_id: str, result: dict[str, Any]) -> bool:
        """Relay one result; True when the trial must stop (pruned)."""
        if tune_trial_id in self.ended:
            return True  # pruned already: epochs it ran before Tune stopped it are not its own
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
            outcome = TrialOutcome(TrialStatus.FAILED, None, 0, None, None, None, 0.0,
                                   "stopped by Ray Tune before it finished")
        self.bridge.tell(tune_trial_id, outcome.status, outcome.val_score, outcome.cost)
        if outcome.status is TrialStatus.COMPLETED and outcome.val_score is not None:
            self.completed[number] = outcome
        self.observer.on_trial_end(number, outcome, checkpoint_dir)


# Ray Tune pickles its searcher, scheduler and callbacks into the experiment state; the
# coordinator (database sessions, Optuna storage) must not travel, so adapters hold a key into
# this driver-local registry instead.
_COORDINATORS: dict[str, Coordinator] = {}


class _CoordinatorRef:
    def __init__(self, key: str) -> None:
        self.key = key

    @property
    def coordinator(self) -> Coordinator:
        return lookup_coordinator(self.key)


def register_coordinator(key: str, coordinator: Coordinator) -> None:
    _COORDINATORS[key] = coordinator


def lookup_coordinator(key: str) -> Coordinator:
    return _COORDINATORS[key]


def unregister_coordinator(key: str) -> None:
    _COORDINATORS.pop(key, None)


class OptunaSearcher(_CoordinatorRef, Searcher):
    def __init__(self, key: str) -> None:
        Searcher.__init__(self)
        _CoordinatorRef.__init__(self, key)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        return self.coordinator.suggest(trial_id)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        # The callback below sees the checkpoint and the error text; it ends the trial.
        pass


class OptunaPrunerScheduler(_CoordinatorRef, FIFOScheduler):
    """FIFO scheduling; each result goes to the Optuna pruner, which may stop the trial."""

    def __init__(self, key: str) -> None:
        FIFOScheduler.__init__(self)
        _CoordinatorRef.__init__(self, key)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:  # noqa: ANN001
        if self.coordinator.result(trial.trial_id, result):
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE


class RelayCallback(_CoordinatorRef, Callback):
    def __init__(self, key: str) -> None:
        _CoordinatorRef.__init__(self, key)

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:  # noqa: ANN001
        checkpoint = trial.checkpoint
        self.coordinator.complete(trial.trial_id, trial.last_result,
                                  checkpoint.path if checkpoint is not None else None)

    def on_trial_recover(self, iteration: int, trials: list, trial, **info) -> None:  # noqa: ANN001
        self.coordinator.retry(trial.trial_id, failure(trial))

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:  # noqa: ANN001
        attempts = trial.num_failures
        error = failure(trial) + (f" (on each of its {attempts} attempts; Ray's retries are "
                                  "spent)" if attempts > 1 else "")
        self.coordinator.complete(trial.trial_id, None, None, error=error[:2000])


def failure(trial) -> str:  # noqa: ANN001
    """A trial's latest failure in one readable line: a worker that died is said so, an
    exception the trial raised is its type and message (without Ray's wrapper, its traceback or
    Tune's "Failure # N" header)."""
    error: object = None
    if trial.pickled_error_file and os.path.isfile(trial.pickled_error_file):
        try:
            with open(trial.pickled_error_file, "rb") as file:
                error = cloudpickle.load(file)
        except Exception:  # noqa: BLE001  (the text below says it too)
            error = None
    if isinstance(error, RayTaskError):
        error = error.cause
    if isinstance(error, RayActorError):
        return ("its Ray worker process died before the trial finished (killed, out of "
                "memory, or crashed)")
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {_first_line(str(error))}"
    text = trial.get_error() or ""
    last = text.rsplit("Failure # ", 1)[-1].splitlines()[1:]  # the latest, without its header
    return _first_line("\n".join(last)) or "the trial failed in its Ray worker"


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:500]
