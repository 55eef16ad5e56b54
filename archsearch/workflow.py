"""One search task end to end: load -> store -> search -> recommend -> export -> report.

The CLI and the API call this; it calls down into every room and is imported by none of them.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from archsearch.blocks import build_bag
from archsearch.data import (
    LoadOptions,
    PreparedData,
    fingerprint,
    load_dataset,
    meta_features,
    prepare,
)
from archsearch.errors import TaskStopped, UsageError, causes
from archsearch.floor import (
    FLOOR,
    SEARCHED,
    FloorModel,
    export_floor,
    fit_floor_model,
    floor_cv,
    floor_summary,
    judge,
)
from archsearch.floor import sentence as floor_sentence
from archsearch.measure import available_memory_mb, wants_cuda
from archsearch.options import DEFAULT_DB_URL, DEFAULT_REPORT_DIR, SearchOptions
from archsearch.recommend import (
    PastEvidence,
    Portfolio,
    Recommendation,
    evidence_for_task,
    facts_for,
    instant_for_task,
    recommend,
)
from archsearch.recommend.knowledge import load_knowledge_base
from archsearch.recommend.rationale import initial_design_sentence, knowledge_verdict
from archsearch.recommend.warm_start import similar_winners
from archsearch.report import ReportInputs, export_model, render_report
from archsearch.search import (
    MODEL_FILE,
    SEARCH_STOPPED,
    FinishedTrial,
    SearchSettings,
    dashboard_hint,
)
from archsearch.space import SearchSpace, load_space
from archsearch.store import (
    RecommendationRecord,
    Store,
    TaskRecord,
    TrialRecord,
    write_failure,
)
from archsearch.store.lease import LeaseKeeper, LeaseLost, lease_seconds, new_owner
from archsearch.trial.crossval import (
    FoldFit,
    bag_score,
    cross_validation_folds,
    members_see_enough,
)
from archsearch.trial.preflight import refuse_unfit_data
from archsearch.trial.runner import model_io, snapshot_seconds
from archsearch.types import (
    ArchConfig,
    Constraints,
    CostMeasurement,
    EpochReport,
    FloorResult,
    Metric,
    TaskStatus,
    TrainConfig,
    TrialOutcome,
    TrialStatus,
    status_counts,
)

Printer = Callable[[str], None]

CANCELLED = "cancelled through the API"
USER_INTERRUPT = "interrupted by the user"
# A stop (Ctrl-C, a cancel) ends the trials it cut short as failed with its reason, so that the
# report says why; a resume runs their configurations again, as it does a killed driver's. A
# cancel whose Ctrl-C was lost winds the search down instead, and says so (SEARCH_STOPPED).
STOP_REASONS = (CANCELLED, USER_INTERRUPT, SEARCH_STOPPED)
# Of a time budget, what the end of the run needs after the last trial: the recommendation, the
# model export, the report (whose first render times families by length, ~5-10 s here) and
# stopping Ray and the trials still running.
CONCLUSION_SECONDS = 30.0
# On small data, the share of a time budget kept for cross-validating the finalists.
FINALISTS_SHARE = 1 / 3


REPORT_FILE, MODEL_DIR = "report.html", "model"  # in a task's folder (see task_folder)


def task_folder(report_dir: Path | str, task_id: int) -> Path:
    """Where a task's report, exported model and checkpoints are written."""
    return Path(report_dir).resolve() / f"task-{task_id}"


def model_folder(task: TaskRecord) -> Path:
    """A stored task's exported model (found from its options, not through its report)."""
    return task_folder(task.options["report_dir"], task.id) / MODEL_DIR


@contextmanager
def whole_file(path: Path) -> Iterator[Path]:
    """A partial file to write, which becomes ``path`` once written: a kill leaves ``path``
    whole (the old one or the new one) or not there."""
    partial = path.with_name(path.name + ".partial")
    try:
        yield partial
    except BaseException:
        partial.unlink(missing_ok=True)  # a failed write leaves no stray partial beside the file
        raise
    partial.replace(path)


def save_whole(obj: object, path: Path) -> None:
    """torch.save through a partial file (:func:`whole_file`)."""
    with whole_file(path) as partial:
        torch.save(obj, partial)


def snapshot_path(checkpoint_dir: Path, number: int) -> Path:
    """Where the latest training state of a running trial is kept, until the trial ends on its
    own (a stop leaves it, for the resume)."""
    return checkpoint_dir / f"trial-{number}-snapshot.pt"


def stderr_printer(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class SearchRequest:
    """A search task: what it is (its data, constraints, space and options: stored with it) and
    where it runs (database, Ray cluster, report folder)."""

    data: str
    constraints: Constraints = field(default_factory=Constraints)
    load: LoadOptions = field(default_factory=LoadOptions)  # --task, --target, columns, windows
    space: str | None = None
    options: SearchOptions = field(default_factory=SearchOptions)
    db_url: str = DEFAULT_DB_URL
    ray_address: str | None = None
    report_dir: Path = DEFAULT_REPORT_DIR

    def to_options(self) -> dict[str, Any]:
        """What a stored task keeps of its request (the database URL and the Ray address are
        where it runs, not what it is; the report folder is kept to find its files again)."""
        return {
            "data": self.data, "constraints": self.constraints.to_dict(),
            "load": self.load.to_dict(),  # so that a resumed task reads its data the same way
            "space": str(Path(self.space).resolve()) if self.space else None,
            "report_dir": str(self.report_dir.resolve()), **self.options.to_dict(),
        }

    @staticmethod
    def from_options(options: dict[str, Any], db_url: str,
                     ray_address: str | None) -> SearchRequest:
        return SearchRequest(
            data=options["data"], constraints=Constraints(**options["constraints"]),
            load=LoadOptions.from_dict(options["load"]), space=options["space"],
            options=SearchOptions.from_dict(options), db_url=db_url, ray_address=ray_address,
            report_dir=Path(options["report_dir"]),
        )


class StoreObserver:
    """Writes every search event to the store as it happens and prints progress."""

    def __init__(self, store: Store, task_id: int, metric: Metric, budget: int | None,
                 checkpoint_dir: Path, printer: Printer,
                 finished: list[TrialRecord] | None = None, budget_seconds: float | None = None,
                 started: float | None = None) -> None:
        self.store = store
        self.task_id = task_id
        self.metric = metric
        self.budget = budget  # None: trials until a time budget ends
        self.budget_seconds = budget_seconds  # the time budget, the bar's unit without ``budget``
        self.started = time.time() if started is None else started  # when the budget began
        self.checkpoint_dir = checkpoint_dir
        self.printer = printer
        self.families: dict[int, str] = {}
        self.ended: dict[int, str] = {}
        self.best: tuple[float, int] | None = None
        self.dashboard_url: str | None = None
        for trial in finished or []:  # a resumed search goes on counting from where it was
            self.families[trial.number] = trial.family
            self.ended[trial.number] = trial.status
            if trial.status == TrialStatus.COMPLETED.value:
                self._note_score(trial.number, trial.val_score)

    def checkpoint(self, number: int) -> Path:
        """Where a completed trial's best weights are kept until the model is exported."""
        return self.checkpoint_dir / f"trial-{number}.pt"

    def _note_score(self, number: int, score: float | None) -> None:
        if score is not None and (self.best is None or self.metric.better(score, self.best[0])):
            self.best = (score, number)

    def on_note(self, message: str) -> None:
        self.printer(message)

    def on_ray_ready(self, dashboard_url: str | None, cluster_resources: dict) -> None:
        self.dashboard_url = dashboard_url
        cpus, gpus = cluster_resources.get("CPU", 0), cluster_resources.get("GPU", 0)
        self.printer(f"Ray: {cpus:g} CPU, {gpus:g} GPU. Dashboard: {dashboard_url or 'n/a'} "
                     f"({dashboard_hint()}); its Jobs/Actors pages name trials "
                     f"archsearch-task-{self.task_id}-N-FAMILY.")

    def on_trial_start(self, number: int, arch: ArchConfig, train: TrainConfig) -> None:
        self.families[number] = arch.family
        config = {"family": arch.family, "model": dict(arch.hparams), "train": train.__dict__}
        self.store.start_trial(self.task_id, number, arch.family, config)

    def on_trial_cost(self, number: int, cost: CostMeasurement, node_id: str | None) -> None:
        self.store.record_cost(self.task_id, number, cost, node_id)

    def on_epoch(self, number: int, report: EpochReport) -> None:
        self.store.record_epoch(self.task_id, number, report)

    def on_trial_pruned(self, number: int, epoch: int) -> None:
        self.store.mark_trial(self.task_id, number, TrialStatus.PRUNED,
                              f"pruned by Optuna after validation round {epoch}")
        snapshot_path(self.checkpoint_dir, number).unlink(missing_ok=True)
        self._ended(number, TrialStatus.PRUNED.value, f"pruned after round {epoch}")

    def on_trial_snapshot(self, number: int, snapshot_file: str) -> None:
        # Copied out of Ray Tune's working directory, which the run removes as it ends.
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        with whole_file(snapshot_path(self.checkpoint_dir, number)) as partial:
            shutil.copyfile(snapshot_file, partial)

    def adopt_snapshot(self, number: int, earlier: int) -> str | None:
        kept = snapshot_path(self.checkpoint_dir, earlier)
        if not kept.is_file():
            return None
        return str(kept.replace(snapshot_path(self.checkpoint_dir, number)))

    def on_trial_retry(self, number: int, reason: str) -> None:
        retries = self.store.record_retry(self.task_id, number, reason)
        self.printer(f"  trial {number} {self.families.get(number, '?')}: {reason}; Ray runs "
                     f"it again (retry {retries}).")

    def on_trial_end(self, number: int, outcome: TrialOutcome,
                     checkpoint_dir: str | None) -> None:
        if checkpoint_dir:
            # Copied out of Ray Tune's working directory so that a resumed search (after the
            # driver was killed) can still export a model trained before the kill.
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(checkpoint_dir) / MODEL_FILE, self.checkpoint(number))
        if outcome.error not in STOP_REASONS:  # one a stop cut short keeps it for the resume
            snapshot_path(self.checkpoint_dir, number).unlink(missing_ok=True)
        self.store.finish_trial(self.task_id, number, outcome)
        if outcome.status is TrialStatus.COMPLETED:
            self._note_score(number, outcome.val_score)
        detail = (f"{self.metric.name}={outcome.val_score:.4g}" if outcome.val_score is not None
                  else (outcome.error or "").splitlines()[0][:120])
        self._ended(number, outcome.status.value, detail)

    def fold_states(self, number: int) -> Path:
        """Where a cross-validated trial's fold models are kept until the bag is scored."""
        return self.checkpoint_dir / f"trial-{number}-folds.pt"

    def _fold_file(self, number: int, k: int, fold: int) -> Path:
        return self.checkpoint_dir / f"trial-{number}-fold-{fold}-of-{k}.pt"

    def on_fold(self, number: int, k: int, fold: int, fit: FoldFit) -> None:
        family = self.families.get(number, "?")
        if fit.score is None:
            why = (fit.error or "").partition("\n")[0][:120]
            self.printer(f"  trial {number} {family}: fold {fold + 1} of {k} failed: {why}")
            return
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        save_whole({"score": fit.score, "state": fit.state}, self._fold_file(number, k, fold))
        threads = f" ({fit.threads} threads)" if fit.threads and fit.threads > 1 else ""
        self.printer(f"  trial {number} {family}: fold {fold + 1} of {k} "
                     f"{self.metric.name} {fit.score:.4g}{threads}")

    def kept_folds(self, number: int, k: int) -> dict[int, FoldFit]:
        kept = {}
        for fold in range(k):
            if (path := self._fold_file(number, k, fold)).is_file():
                saved = torch.load(path)
                kept[fold] = FoldFit(saved["score"], saved["state"])
        return kept

    def on_cross_validation(self, number: int, mean: float, std: float,
                            fold_states: list[dict[str, torch.Tensor]]) -> None:
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        save_whole(fold_states, self.fold_states(number))
        folds = len(fold_states)
        self.store.record_cross_validation(self.task_id, number, mean, std, folds)
        for fold in range(folds):  # in the file of all k now, and the store says so
            self._fold_file(number, folds, fold).unlink(missing_ok=True)
        self.printer(f"  trial {number} {self.families.get(number, '?')}: {folds}-fold "
                     f"{self.metric.name} {mean:.4g} ± {std:.2g}")

    def _ended(self, number: int, status: str, detail: str) -> None:
        self.ended[number] = status
        counts = status_counts(self.ended.values())
        best = (f"best {self.metric.name} {self.best[0]:.4g} ({self.families[self.best[1]]}, "
                f"trial {self.best[1]})" if self.best else "no completed trial yet")
        if self.budget:
            bar = "#" * round(20 * len(self.ended) / self.budget)
            done = f"{len(self.ended)}/{self.budget}"
        else:  # a time budget: the count so far and the share of the time spent
            spent, total = time.time() - self.started, self.budget_seconds or math.inf
            bar = "#" * round(20 * min(1.0, spent / total))
            done = f"{len(self.ended)} in {spent:.0f} of {total:.0f} s"
        self.printer(
            f"|{bar:-<20}| [{done}] trial {number} "
            f"{self.families.get(number, '?')}: "
            f"{status} ({detail}) | completed {counts['completed']}, pruned {counts['pruned']}, "
            f"failed {counts['failed']}, infeasible {counts['infeasible']} | {best}"
        )


def submit(request: SearchRequest) -> int:
    """Validate the request and store it as a ``queued`` task; input errors raise before any
    write. The search itself runs in :func:`execute` (here, in a worker process, or later)."""
    check_environment()
    dataset = load_dataset(request.data, request.load)
    space = load_space(request.space)
    # The split must be possible before the task is accepted.
    prepared = prepare(dataset, request.options.seed)
    _refuse_if_nothing_fits(request, space, prepared)
    with Store(request.db_url) as store:
        return store.create_task(
            source=request.data, dataset_name=dataset.name, task_kind=dataset.task.value,
            metric=Metric.for_task(dataset.task), seed=request.options.seed,
            constraints=request.constraints.to_dict(), options=request.to_options(),
            space_name=space.name, meta_features=meta_features(dataset),
            fingerprint=fingerprint(dataset), budget_trials=request.options.budget_trials,
            budget_minutes=request.options.budget_minutes, status=TaskStatus.QUEUED,
        )


def _refuse_if_nothing_fits(request: SearchRequest, space: SearchSpace,
                            prepared: PreparedData) -> None:
    """Refuse the data set (DataError) when the estimated memory of every family's smallest
    configuration breaks ``max_memory_mb`` or, for a search on this machine, the share of its
    memory a trial may take (a Ray cluster's workers are not this machine: there only the
    trials themselves can tell). The parameter budget does not depend on the data: a space
    whose models are all too large is searched and its trials end infeasible, as before."""
    constraints = dataclasses.replace(request.constraints, max_params=None)
    space = space.under(constraints, prepared.task)
    available = available_memory_mb() if request.ray_address is None else math.inf
    candidates = (config for family in sorted(space.families)
                  for config in space.smallest(family))
    refuse_unfit_data(prepared, model_io(prepared, constraints), constraints, candidates,
                      available, on_cpu=not wants_cuda(constraints.device))


def check_environment() -> None:
    """Refuse (UsageError) a bad setting of the environment variables a search reads, before
    a task is stored or touched."""
    lease_seconds()
    snapshot_seconds()


def run_task(request: SearchRequest, printer: Printer = stderr_printer,
             started: float | None = None) -> dict[str, Any]:
    """Submit and execute a search task; return its summary. ``started`` (time.time(); default
    now) is when ``budget_minutes`` began to run: the CLI passes its own start."""
    started = time.time() if started is None else started
    return execute(submit(request), request.db_url, request.ray_address, printer, started)


def execute(task_id: int, db_url: str, ray_address: str | None = None,
            printer: Printer = stderr_printer, started: float | None = None,
            owner: str | None = None) -> dict[str, Any]:
    """Run the search of a stored task, then recommend, export and report (``started``: see
    :func:`run_task`; default now). The driver holds the task's lease (as ``owner``, default a
    new id) from start to end, and is refused while another live driver holds it."""
    started = time.time() if started is None else started
    owner = owner or new_owner()
    check_environment()
    seconds = lease_seconds()
    with Store(db_url) as store:
        _take_lease(store, task_id, owner, seconds)
        lost: list[str] = []

        def lose(reason: str) -> None:
            lost.append(reason)
            _interrupt_driver()

        cancel = _Cancel()
        keeper = LeaseKeeper(lambda: store.renew_lease(task_id, owner, seconds), seconds,
                             on_cancel=cancel, on_lost=lose)
        try:
            keeper.start()
            searched = _search_phase(store, task_id, db_url, ray_address, printer, started,
                                     keeper, lost, cancel)
            return _conclusion_phase(searched, owner, keeper, printer)
        except BaseException as exc:
            # Whatever ends the driver outside the search loop (a bug, Ctrl-C while loading),
            # the task must not stay "running" forever; a driver that lost its lease writes
            # nothing.
            keeper.stop()
            _end_stopped_task(exc, store, task_id, owner, keeper, lost, seconds)
            raise


def _end_stopped_task(exc: BaseException, store: Store, task_id: int, owner: str,
                      keeper: LeaseKeeper, lost: list[str], seconds: float) -> None:
    """Store the end of a task whose driver ``exc`` stopped (interrupted, or failed); raise
    LeaseLost when another driver holds it now, TaskStopped when a write was refused."""
    # A refused write stops the driver from the main thread, or from the lease keeper when it
    # could not renew for a whole lease.
    refused = write_failure(exc) or (keeper.error and write_failure(keeper.error))
    fenced = next((e for e in causes(exc) if isinstance(e, LeaseLost)), None)
    if fenced is not None:  # a write found the lease taken: write nothing more
        raise fenced from None
    if lost and not refused:
        raise LeaseLost(task_id, lost[0]) from None
    interrupted = not refused and isinstance(exc, KeyboardInterrupt)
    reason = (_stop_reason(keeper) if interrupted else f"a write failed: {refused}"
              if refused else f"{type(exc).__name__}: {exc}")
    ended = _mark_ended(store, task_id,
                        TaskStatus.INTERRUPTED if interrupted else TaskStatus.FAILED,
                        reason, owner)
    if refused:
        state = ("It is stored as failed." if ended else
                 "Its end could not be stored either: it reads interrupted once its lease "
                 f"lapses ({seconds:g} s).")
        raise TaskStopped(
            f"task {task_id} stopped: {reason}. {state} Free space (or bring the database "
            f"back), then continue it with `archsearch search --resume {task_id}`: its "
            "finished trials are kept.") from None


@dataclass
class _SearchedTask:
    """What the search phase of :func:`execute` hands its conclusion phase."""

    store: Store
    task: TaskRecord
    request: SearchRequest
    data: PreparedData
    observer: StoreObserver
    facts: dict[str, Any]  # the task's facts for the recommender (facts_for)
    families: list[str]
    past: PastEvidence
    predicted: str  # the instant recommendation's family, before the search
    portfolio: Portfolio  # the zero-shot portfolio that led it (``used`` False: none did)
    initial_design: str | None  # the order of its initial design, and why (None: resumed)
    floor_model: FloorModel | None  # None: kept from before a resume, or not fitted
    status: TaskStatus = TaskStatus.COMPLETED
    error: str | None = None  # why the search stopped early (an interrupt, a cancel)


def _search_phase(store: Store, task_id: int, db_url: str, ray_address: str | None,
                  printer: Printer, started: float, keeper: LeaseKeeper,
                  lost: list[str], cancel: _Cancel) -> _SearchedTask:
    """Load the task's data, fit its floor and run its search (its trials go to the store);
    an interrupt or a cancel ends the search early, and the conclusion still follows."""
    task = store.get_task(task_id)
    request = SearchRequest.from_options(task.options, db_url, ray_address)
    options = request.options
    dataset = load_dataset(request.data, request.load)
    space = load_space(request.space)
    prepared = prepare(dataset, options.seed)
    study_name = f"archsearch-task-{task_id}"
    store.update_task(task_id, status=TaskStatus.RUNNING, optuna_study=study_name)
    printer(f"Task {task_id}: {dataset.name}, {dataset.task.value}, {dataset.n_sequences} "
            f"sequences x {dataset.seq_len} steps x {dataset.n_features} channels; "
            f"{_budget_text(options)} over {', '.join(sorted(space.families))}.")
    floor_model = _measure_floor(store, task, prepared, options.seed, printer)
    checkpoint_dir = task_folder(request.report_dir, task_id) / "checkpoints"
    finished, unfinished = _take_stock(store, task_id, printer, checkpoint_dir)
    observer = StoreObserver(store, task_id, task.metric, options.budget_trials,
                             checkpoint_dir, printer,
                             finished,
                             options.budget_minutes * 60 if options.budget_minutes else None,
                             started)
    families = sorted(space.families)
    facts = facts_for(task.meta_features, task.task_kind, request.constraints.to_dict())
    knowledge = load_knowledge_base()
    past = evidence_for_task(store, task, families, knowledge)
    # The initial design runs the zero-shot portfolio of past tasks first, then the instant
    # recommendation's ranking: under a time budget the likeliest families are measured
    # before time runs out.
    instant, portfolio = instant_for_task(store, task, facts, families, past, knowledge)
    initial_design = None if finished else initial_design_sentence(portfolio)
    searched = _SearchedTask(store, task, request, prepared, observer, facts, families, past,
                             instant.family, portfolio, initial_design, floor_model)
    trial_minutes, deadline = _time_plan(request, prepared, started)
    settings = SearchSettings(
        options=options,
        trials_left=(None if options.budget_trials is None
                     else options.budget_trials - len(finished)),
        trial_minutes=trial_minutes, deadline=deadline, ray_address=ray_address,
        optuna_storage=db_url, study_name=study_name, rerun_numbers=tuple(unfinished),
        finished=_finished_trials(finished),
        warm_start=tuple(_warm_start(store, task, printer)) if not finished else (),
        family_order=portfolio.order,
    )
    if initial_design:
        printer(initial_design)
    # Imported here: Ray and Optuna load in the driver that runs a search, not in every
    # process that imports the workflow (the API server, `archsearch tasks`).
    from archsearch.search.engine import run_search

    interrupted = False
    try:  # with no trial left, a resume may still owe its finalists' folds
        run_search(prepared, space, request.constraints, settings, observer, cancel.search_stop)
    except KeyboardInterrupt:
        if lost:  # the driver's ending says why: another driver, or a refused write
            raise
        interrupted = True
    finally:
        cancel.search_ended = True
    if interrupted or cancel.search_stop.is_set():  # the latter: it wound down unsignalled
        searched.status, searched.error = TaskStatus.INTERRUPTED, _stop_reason(keeper)
        printer("Interrupted: finishing the report with the trials done so far.")
    return searched


def _conclusion_phase(searched: _SearchedTask, owner: str, keeper: LeaseKeeper,
                      printer: Printer) -> dict[str, Any]:
    """Recommend, bag and export the pick, judge the floor, write the report and store the
    task's end (only then: a reader who sees "completed" finds the report and the model)."""
    store, task_id, metric = searched.store, searched.task.id, searched.task.metric
    request, observer, status, error = (searched.request, searched.observer, searched.status,
                                        searched.error)
    _close_unfinished(store, task_id, error or "the search ended before this trial did")
    trials = store.trials(task_id)
    if not any(t.status == TrialStatus.COMPLETED.value for t in trials):
        status = TaskStatus.FAILED if status is TaskStatus.COMPLETED else status
        error = error or "no trial completed; see the trial errors in the report"
    rec = recommend(searched.facts, searched.families, metric, selection_trials(trials),
                    past=searched.past)
    rec.rationale.extend(_cross_validation_sentences(trials, rec.trial_number, metric))
    verdict = knowledge_verdict(searched.predicted, rec.family, searched.past,
                                searched.portfolio)
    if verdict:
        rec.rationale.append(verdict)
    if searched.initial_design:
        rec.rationale.append(searched.initial_design)
    best = next((t for t in trials if t.number == rec.trial_number), None)
    bag = _bag_the_pick(store, task_id, best, observer, searched.data, request,
                        metric, rec, printer)
    if bag is not None:  # the stored bag score, without reading every trial again
        best = dataclasses.replace(best, bag_test_score=bag[1])
        trials = [best if t.number == best.number else t for t in trials]
        bag = bag[0]
    model_dir = task_folder(request.report_dir, task_id) / MODEL_DIR
    # A resumed task replaces what its earlier run exported.
    shutil.rmtree(model_dir, ignore_errors=True)
    model_files = {}
    if best is not None and observer.checkpoint(best.number).is_file():
        model_files = export_model(
            bag or observer.checkpoint(best.number), ArchConfig(best.family, best.config["model"]),
            model_io(searched.data, request.constraints), model_dir,
            {"train": best.config["train"], "metric": metric.__dict__,
             "val_score": best.val_score, "test_score": best.test_score,
             "bag_test_score": best.bag_test_score},
            bag_members=best.cv_folds if bag else 0,
        )
    model_files.update(_judge_floor(store, task_id, searched.data, request, trials, best, rec,
                                    searched.floor_model, model_dir, printer))
    if status is not TaskStatus.INTERRUPTED:  # a resume reads its trials' and folds' models
        shutil.rmtree(observer.checkpoint_dir, ignore_errors=True)  # the pick is exported
    store.save_recommendation(task_id, _record(rec))
    ending = {"status": status.value, "error": error, "best_trial_id": best.id if best else None}
    # The report shows the final status, but the status is stored only once the report and
    # the model are in place: a reader who sees "completed" can fetch both at once.
    report = render_report(ReportInputs(
        dataclasses.replace(store.get_task(task_id), **ending), trials,
        store.latest_recommendation(task_id), model_files, observer.dashboard_url),
        task_folder(request.report_dir, task_id) / REPORT_FILE)
    keeper.stop()
    if not store.settle(task_id, owner, **ending, report_path=str(report)):
        raise LeaseLost(task_id, "its lease lapsed before the driver could store the end")
    return summary(store.get_task(task_id), trials, rec, observer.dashboard_url)


def _bag_the_pick(store: Store, task_id: int, best: TrialRecord | None,
                  observer: StoreObserver, data: PreparedData, request: SearchRequest,
                  metric: Metric, rec: Recommendation,
                  printer: Printer) -> tuple[Path, float] | None:
    """On small data the pick's fold models (from its cross-validation) are bagged into the
    answer: scored on test, stored, and written as one state dict (its path and test score;
    None when the pick was not cross-validated, its fold models saw less data than it did,
    it must stream, or it would break a constraint as k copies)."""
    if best is None or not observer.fold_states(best.number).is_file():
        return None
    states = torch.load(observer.fold_states(best.number))
    k, constraints = len(states), request.constraints
    if not members_see_enough(data, k, request.options.seed):
        rec.rationale.append(f"The pick's {k} fold models were not bagged: each trained on "
                             f"fewer sequences than the single model of trial {best.number}, "
                             f"which is the answer.")
        return None
    # k members: k times the weights and the time; memory counted k times too (an upper bound,
    # the members run one after another).
    refusals = constraints.violations(k * (best.params or 0), k * (best.latency_ms or 0.0),
                                      k * (best.peak_memory_mb or 0.0))
    if constraints.streaming or refusals:
        why = "it must stream" if constraints.streaming else "; ".join(refusals)
        rec.rationale.append(f"The pick's {k} fold models were not bagged ({why} as {k} "
                             f"copies): the answer is the single model of trial {best.number}.")
        return None
    arch, io = ArchConfig(best.family, best.config["model"]), model_io(data, constraints)
    test = bag_score(arch, io, states, data.test)
    store.record_bag(task_id, best.number, test)
    bag = build_bag(arch, io, k)
    for member, state in zip(bag.members, states, strict=True):
        member.load_state_dict(state)
    path = observer.checkpoint_dir / f"trial-{best.number}-bag.pt"
    save_whole(bag.state_dict(), path)
    text = (f"The searched model exported is the bag of the pick's {k} fold models (each "
            f"trained on {k - 1}/{k} of train+validation; their mean prediction): test "
            f"{metric.name} {test:.4g}, vs {best.test_score:.4g} for the single model of trial "
            f"{best.number} trained on the training split; latency and size are about {k}x "
            f"the trial's.")
    rec.rationale.append(text)
    printer(text)
    return path, test


class LeaseHeld(UsageError):
    """Another live driver holds the task's lease: this one must not run it."""


def claim(db_url: str, task_id: int, owner: str) -> None:
    """Take a task's lease for a driver about to start as ``owner`` (LeaseHeld while another
    live driver holds it), so that a refusal comes before any process starts."""
    with Store(db_url) as store:
        _take_lease(store, task_id, owner, lease_seconds())


def _take_lease(store: Store, task_id: int, owner: str, seconds: float) -> None:
    if not store.acquire_lease(task_id, owner, seconds):
        task = store.get_task(task_id)
        until = (f", lease renewed until {task.lease_expires_at:%H:%M:%S} UTC"
                 if task.lease_expires_at else "")
        raise LeaseHeld(
            f"task {task_id} is being run by another live driver ({task.lease_owner}{until}): "
            f"cancel it first (POST /tasks/{task_id}/cancel), or wait until its lease lapses "
            f"({seconds:g} s after that driver stops) and resume then.")
    store.fence(task_id, owner)  # from here on, its writes commit only while it holds the lease


class _Cancel:
    """What a cancel read from the database does to this driver: while it searches, it stops
    as Ctrl-C stops it, and its search winds down at the next trial result should that signal
    be lost; once its search has ended, nothing: the report follows, and the task completes."""

    def __init__(self) -> None:
        self.search_stop = threading.Event()
        self.search_ended = False

    def __call__(self) -> None:
        if not self.search_ended:
            self.search_stop.set()
            _interrupt_driver()


def _interrupt_driver() -> None:
    """Stop the search as Ctrl-C does (a cancel, a lost lease): the main thread gets
    KeyboardInterrupt, the workflow ends the task and writes its report."""
    os.kill(os.getpid(), signal.SIGINT)


def _stop_reason(keeper: LeaseKeeper) -> str:
    return CANCELLED if keeper.cancelled else USER_INTERRUPT


# -- the floor (archsearch.floor): fitted before the search, judged after it -----------------


def _floor_line(floor: FloorResult, metric: Metric) -> str:
    val = f"{floor.val_score:.4g}" if floor.val_score is not None else "n/a"
    test = f"{floor.test_score:.4g}" if floor.test_score is not None else "n/a"
    return (f"{floor.method} validation {metric.name} {val}, test {test}, fit "
            f"{floor.fit_seconds:.2g} s on {floor.train_series} series, "
            f"{floor.latency_ms:.3g} ms per series, {floor.size_mb:.2g} MB")


def _measure_floor(store: Store, task: TaskRecord, data: PreparedData, seed: int,
                   printer: Printer) -> FloorModel | None:
    """Fit, print and store the task's floor, unless it has one (a resumed task); the fitted
    model (None when kept from before, or when it could not be fitted)."""
    if task.floor is not None:
        printer(f"Floor: {_floor_line(task.floor, task.metric)} (measured before the resume).")
        return None
    try:
        model, floor = fit_floor_model(data, seed)
    except Exception as exc:  # noqa: BLE001  (a floor that cannot be fitted never stops a search)
        printer(f"Floor: not measured ({type(exc).__name__}: {exc})."[:400])
        return None
    store.save_floor(task.id, floor)
    printer(f"Floor: {_floor_line(floor, task.metric)}.")
    return model


def _judge_floor(store: Store, task_id: int, data: PreparedData, request: SearchRequest,
                 trials: list[TrialRecord], best: TrialRecord | None, rec: Recommendation,
                 model: FloorModel | None, model_dir: Path,
                 printer: Printer) -> dict[str, str]:
    """Cross-validate the floor when finalists were, say in the rationale whether the pick
    beats it, and export the floor model when it is the answer (name -> path written)."""
    task = store.get_task(task_id)
    floor, metric = task.floor, task.metric
    if floor is None:
        return {}
    # The floor is cross-validated on the finalists' folds (their k may be fewer than asked,
    # when time was short: see archsearch/search/selection.py).
    finalist_folds = [t.cv_folds for t in trials if t.cv_score is not None and t.cv_folds]
    if request.options.cv_folds >= 2 and floor.cv_mean is None and finalist_folds:
        try:
            folds = cross_validation_folds(data, finalist_folds[0], request.options.seed)
            mean, std, bag_test = floor_cv(folds, request.options.seed, data.test)
            store.record_floor_cross_validation(task_id, mean, std, len(folds), bag_test)
            floor = dataclasses.replace(floor, cv_mean=mean, cv_std=std, cv_folds=len(folds),
                                        bag_test_score=bag_test)
            printer(f"  floor {floor.method}: {len(folds)}-fold {metric.name} {mean:.4g} "
                    f"± {std:.2g}")
        except Exception as exc:  # noqa: BLE001  (then the floor compares on validation)
            printer(f"  floor {floor.method}: not cross-validated ({type(exc).__name__}: "
                    f"{exc})"[:400])
    verdict = judge(floor, best, metric)
    text = floor_sentence(floor, best, metric, verdict)
    if not verdict.floor_wins:
        rec.rationale.append(text)
        return {}
    rec.rationale.insert(0, text)
    printer(text)
    try:
        if model is None:  # measured before a resume: refitted (seeded, so the same model)
            model = fit_floor_model(data, request.options.seed)[0]
        return export_floor(model, floor, model_dir,
                            {"metric": metric.__dict__, "data": task.dataset_name})
    except Exception as exc:  # noqa: BLE001  (the search's results still get their report)
        note = f"The floor model could not be exported: {type(exc).__name__}: {exc}"[:400]
        rec.rationale.insert(1, note)
        printer(note)
        return {}


def _budget_text(options: SearchOptions) -> str:
    trials = f"{options.budget_trials} trials" if options.budget_trials else "trials"
    if options.budget_minutes is None:
        return trials
    return f"{trials} within {options.budget_minutes:g} minutes (the whole run)"


def _time_plan(request: SearchRequest, data: PreparedData,
               started: float) -> tuple[float | None, float | None]:
    """(minutes for the trials, time.time() by which the finalists must be done) so that the
    whole run, conclusion included, ends within ``budget_minutes``; (None, None) without one."""
    options = request.options
    if options.budget_minutes is None:
        return None, None
    end = started + options.budget_minutes * 60.0
    small = options.cv_folds >= 2 and len(data.train) + len(data.val) < SearchSettings.cv_below
    reserve = CONCLUSION_SECONDS + (FINALISTS_SHARE * options.budget_minutes * 60.0
                                    if small else 0.0)
    trial_seconds = max(1.0, end - time.time() - reserve)
    return trial_seconds / 60.0, end - CONCLUSION_SECONDS


def _warm_start(store: Store, task: TaskRecord, printer: Printer) -> list[dict[str, Any]]:
    winners = similar_winners(task.meta_features, store.past_winners(task.id))
    for past, trial, distance in winners:
        printer(f"Warm start from task {past.id} ({past.dataset_name}, distance "
                f"{distance:.2f}): its winner, {trial.family} trial {trial.number}.")
    return [trial.config for _, trial, _ in winners]


def resume(task_id: int, db_url: str, ray_address: str | None = None,
           printer: Printer = stderr_printer, owner: str | None = None) -> dict[str, Any]:
    """Continue a task whose driver stopped (killed, crashed, interrupted): finished trials are
    kept, unfinished ones run again, and the budget is met exactly."""
    with Store(db_url) as store:
        task = store.get_task(task_id)
    if task.status == TaskStatus.COMPLETED.value:
        raise UsageError(f"task {task_id} already completed; its report is {task.report_path}.")
    return execute(task_id, db_url, ray_address, printer, owner=owner)


def left_unfinished(trial: TrialRecord) -> bool:
    """Whether a stopped search's trial is to be run again by its resume: a killed driver left
    it running, or a stop cut it short (:data:`STOP_REASONS`)."""
    return trial.status == TrialStatus.RUNNING.value or (
        trial.status == TrialStatus.FAILED.value and trial.error in STOP_REASONS)


def _take_stock(store: Store, task_id: int, printer: Printer, checkpoint_dir: Path
                ) -> tuple[list[TrialRecord], list[int]]:
    """Finished trials, and the numbers of unfinished ones (:func:`left_unfinished`; removed
    here, to be run again, from their latest snapshot where they saved one)."""
    finished, unfinished = [], []
    for trial in store.trials(task_id):
        if left_unfinished(trial):
            store.delete_trial(task_id, trial.number)
            unfinished.append(trial.number)
            printer(f"Trial {trial.number} ({trial.family}) was left unfinished by a stopped "
                    f"driver: {_rerun_sentence(snapshot_path(checkpoint_dir, trial.number))}.")
        else:
            finished.append(trial)
    if finished:
        printer(f"Resuming: {len(finished)} finished trial(s) kept.")
    return finished, unfinished


def _rerun_sentence(snapshot: Path) -> str:
    """How an unfinished trial runs again: on from its snapshot, or (none, or one that cannot
    be read, which is then removed) from the start."""
    if not snapshot.is_file():
        return "its configuration runs again"
    try:
        state = torch.load(snapshot, map_location="cpu", weights_only=True)
        return (f"it goes on from its snapshot after round {len(state['reports'])} "
                f"({state['seconds']:.0f} s of training)")
    except Exception as exc:  # noqa: BLE001  (a damaged snapshot costs its training, no more)
        snapshot.unlink(missing_ok=True)
        return (f"its snapshot could not be read ({type(exc).__name__}), so its configuration "
                "runs again from the start")


def _finished_trials(trials: list[TrialRecord]) -> tuple[FinishedTrial, ...]:
    """The completed trials a resumed search keeps, as its finalists are chosen among them."""
    return tuple(
        FinishedTrial(t.number, ArchConfig(t.family, t.config["model"]),
                      TrainConfig(**t.config["train"]),
                      TrialOutcome(TrialStatus.COMPLETED, None, t.epochs_run, t.best_epoch,
                                   t.val_score, t.test_score, t.train_seconds), t.cv_folds)
        for t in trials if t.status == TrialStatus.COMPLETED.value and t.val_score is not None)


def _mark_ended(store: Store, task_id: int, status: TaskStatus, error: str,
                owner: str | None) -> bool:
    try:
        return store.end_unfinished(task_id, status, error, owner)
    except Exception:  # noqa: BLE001  (the original error is what the caller must see; if
        return False   # even this write fails, readers see the lease lapse)


def end_unfinished_task(db_url: str, task_id: int, status: TaskStatus, reason: str,
                        owner: str | None = None) -> bool:
    """End a task whose driver is gone (killed, cancelled, crashed) if it still reads queued or
    running and no live driver but ``owner`` holds its lease; a task its driver already ended,
    or another live driver runs, keeps its status. True when it was ended here."""
    with Store(db_url) as store:
        return _mark_ended(store, task_id, status, reason, owner)


def cancel_task(db_url: str, task_id: int) -> bool:
    """Cancel a task this process did not start: ask its live driver through the database
    (it stops within a renewal, lease/6 s), or end it at once when no live driver holds it.
    True when a live driver was asked."""
    with Store(db_url) as store:
        if store.request_cancel(task_id):
            return True
        _mark_ended(store, task_id, TaskStatus.INTERRUPTED, CANCELLED, None)
        return False


def selection_trials(trials: list[TrialRecord]) -> list[TrialRecord]:
    """The trials that compete for the pick, scored as they are compared: a cross-validated
    finalist (small data) competes on its cross-validation mean and stands for its family;
    families without a finalist keep their single-split scores, so that every family measured
    stays in the ranking (the recommender ranks finalists above them)."""
    finalist_families = {t.family for t in trials if t.cv_score is not None}
    return [dataclasses.replace(t, val_score=t.cv_score) if t.cv_score is not None else t
            for t in trials if t.cv_score is not None or t.family not in finalist_families]


def _cross_validation_sentences(trials: list[TrialRecord], picked: int | None,
                                metric: Metric) -> list[str]:
    finalists = [t for t in trials if t.cv_score is not None]
    pick = next((t for t in finalists if t.number == picked), None)
    if pick is None:
        return []
    sentences = [
        f"Small data: the best trial of each of the {len(finalists)} most competitive families "
        f"was re-scored by {pick.cv_folds}-fold cross-validation on train+validation, and those "
        f"means are compared above (other families keep their single validation split's score "
        f"and rank below); the pick scored {pick.cv_score:.4g} ± {pick.cv_std:.2g} (its single "
        f"validation split said {pick.val_score:.4g})."]
    rivals = sorted((t for t in finalists if t.number != pick.number),
                    key=lambda t: metric.sign * t.cv_score, reverse=True)
    if rivals:
        rival = rivals[0]
        margin = metric.sign * (pick.cv_score - rival.cv_score)
        error = math.sqrt((pick.cv_std ** 2 + rival.cv_std ** 2) / max(1, pick.cv_folds))
        verdict = ("a clear lead" if margin > 2 * error else
                   "within the noise of the folds: the two are not told apart on this data")
        sentences.append(
            f"Its margin over the runner-up finalist ({rival.family}, trial {rival.number}, "
            f"{rival.cv_score:.4g}) is {margin:.3g} ± {error:.2g} (one standard error over the "
            f"folds): {verdict}.")
    return sentences


def _close_unfinished(store: Store, task_id: int, reason: str) -> None:
    for trial in store.trials(task_id):
        if trial.status == TrialStatus.RUNNING.value:
            store.mark_trial(task_id, trial.number, TrialStatus.FAILED, reason)


def _record(rec: Recommendation) -> RecommendationRecord:
    return RecommendationRecord(rec.family, rec.config, rec.confidence, rec.rationale,
                                [r.to_dict() for r in rec.ranking])


def summary(task: TaskRecord, trials: list[TrialRecord], rec: Recommendation | None,
            dashboard_url: str | None) -> dict[str, Any]:
    """The ``--json`` summary of a task."""
    best = next((t for t in trials if t.id == task.best_trial_id), None)
    counts = status_counts(t.status for t in trials)
    if not counts[TrialStatus.RUNNING.value]:  # a finished search: the counts sum to its trials
        del counts[TrialStatus.RUNNING.value]
    return {
        "task_id": task.id,
        "status": task.status,
        "metric": {"name": task.metric.name, "direction": task.metric.direction},
        "best": None if best is None else {
            "trial_id": best.number, "family": best.family, "config": best.config,
            "val_score": best.val_score, "test_score": best.test_score,
            "latency_ms": best.latency_ms, "params": best.params,
            "peak_memory_mb": best.peak_memory_mb,
            # small data: the answer is the bag of the pick's cross-validation fold models
            "bag": None if best.bag_test_score is None else {
                "members": best.cv_folds, "test_score": best.bag_test_score},
        },
        # The measured floor, and which model is the answer: the best searched model only when
        # it beats the floor on selection scores (archsearch.floor.judge; never on test).
        "floor": floor_summary(task.floor, best, task.metric),
        "answer": _answer(task.floor, best, task.metric),
        "recommendation": None if rec is None else {
            "family": rec.family, "config": rec.config, "confidence": rec.confidence,
            "rationale": rec.rationale,
        },
        "trials": counts,
        "objectives": task.options.get("objectives", "quality"),
        # trials not dominated in quality vs latency or vs parameters (within the constraints)
        "pareto_front": [] if rec is None else rec.pareto,
        "report": task.report_path,
        "dashboard_url": dashboard_url,
    }


def _answer(floor: FloorResult | None, best: TrialRecord | None, metric: Metric) -> str | None:
    """"searched" | "floor" | None (neither a searched model nor a floor)."""
    if floor is None:
        return None if best is None else SEARCHED
    return FLOOR if judge(floor, best, metric).floor_wins else SEARCHED


def rerender_report(db_url: str, task_id: int) -> Path:
    """Render a stored task's report again (from the database alone; a database whose schema
    is behind is refused, not upgraded)."""
    with Store(db_url, upgrade=False) as store:
        task = store.get_task(task_id)
        out = Path(task.report_path) if task.report_path else \
            task_folder(task.options["report_dir"], task_id) / REPORT_FILE
        model_dir = model_folder(task)
        model_files = ({p.stem: str(p) for p in sorted(model_dir.iterdir())}
                       if model_dir.is_dir() else {})
        report = render_report(ReportInputs(task, store.trials(task_id),
                                            store.latest_recommendation(task_id), model_files),
                               out)
        store.update_task(task_id, report_path=str(report))
        return report


def list_tasks(db_url: str) -> list[TaskRecord]:
    """Every stored task (a database whose schema is behind is refused, not upgraded)."""
    with Store(db_url, upgrade=False) as store:
        return store.list_tasks()
