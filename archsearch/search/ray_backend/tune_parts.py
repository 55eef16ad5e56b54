"""Ray Tune adapters: the trainable, a Searcher over the Optuna study, a scheduler that lets
Optuna's pruner stop trials, and a callback that relays events; each delegates its decisions
to the :class:`~archsearch.search.coordinator.Coordinator`, which knows nothing of Ray."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import warnings
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
from archsearch.search.coordinator import EVENT, Coordinator, outcome_to_dict
from archsearch.search.observer import MODEL_FILE, SNAPSHOT_FILE
from archsearch.trial import Snapshots, TrialSpec, run_trial
from archsearch.types import (
    ArchConfig,
    Constraints,
    CostMeasurement,
    EpochReport,
    TrainConfig,
)


def trainable(config: dict[str, Any], data: PreparedData) -> None:
    """Ray Tune function trainable: one trial. ``data`` comes from the object store once.

    Between rounds it reports a snapshot of its training state as a Ray checkpoint now and
    then (``snapshot_every_s``); it goes on from the latest one when Ray retries it after its
    worker died, or from ``resume_from`` when it runs again a trial that a stop cut short."""
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    torch.set_num_threads(max(1, int(cpus)))
    spec = TrialSpec(
        arch=ArchConfig(config["arch"]["family"], config["arch"]["hparams"]),
        train=TrainConfig(**config["train"]),
        constraints=Constraints(**config["constraints"]),
        seed=config["seed"],
        train_until=config["train_until"],
    )
    cost_fields: dict[str, Any] = {}

    def on_cost(cost: CostMeasurement) -> None:
        cost_fields["cost"] = dataclasses.asdict(cost)
        cost_fields["node_id"] = ray.get_runtime_context().get_node_id()

    def on_epoch(report: EpochReport) -> None:
        tune.report({EVENT: "epoch", **dataclasses.asdict(report), **cost_fields})

    def on_snapshot(report: EpochReport, state: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            torch.save(state, os.path.join(tmp, SNAPSHOT_FILE))
            tune.report({EVENT: "epoch", **dataclasses.asdict(report), **cost_fields},
                        checkpoint=Checkpoint.from_directory(tmp))

    retried = tune.get_checkpoint()
    resume = _snapshot_state(os.path.join(retried.path, SNAPSHOT_FILE) if retried
                             else config.get("resume_from"))
    snapshots = Snapshots(on_snapshot, config["snapshot_every_s"], resume)
    result = run_trial(spec, data, on_epoch, on_cost, snapshots)
    final = {EVENT: "final", "outcome": outcome_to_dict(result.outcome)}
    if result.state_dict is None:
        tune.report(final)
        return
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(result.state_dict, os.path.join(tmp, MODEL_FILE))
        tune.report(final, checkpoint=Checkpoint.from_directory(tmp))


def _snapshot_state(path: str | None) -> dict[str, Any] | None:
    """The training state saved at ``path`` (None: none there, or none that can be read: the
    trial then trains from the start, as it did before snapshots)."""
    if path is None or not os.path.isfile(path):
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (a damaged snapshot costs its training, no more)
        warnings.warn(f"the snapshot {path} could not be read ({exc}); the trial trains from "
                      "the start", stacklevel=1)
        return None


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

    def suggest(self, trial_id: str) -> dict[str, Any] | str:
        # FINISHED, not None: on None, Ray Tune with no trial running polls the searcher for up
        # to 600 s before it looks at its time budget again (a run was seen stuck there).
        config = self.coordinator.suggest(trial_id)
        return Searcher.FINISHED if config is None else config

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

    def on_checkpoint(self, iteration: int, trials: list, trial, checkpoint,  # noqa: ANN001
                      **info) -> None:
        self.coordinator.snapshot(trial.trial_id, checkpoint.path)

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
