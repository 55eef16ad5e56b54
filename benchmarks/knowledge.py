"""Build the knowledge base's performance matrix, resumably (docs/knowledge-base.md).

    python benchmarks/knowledge.py build [--tasks ID,...] [--families F,...] [--trials N]
                                         [--steps N] [--cv-folds K] [--out FILE] [--work DIR]
    python benchmarks/knowledge.py status [--out FILE] [--work DIR]
    python benchmarks/knowledge.py calibrate [--out FILE]
    python benchmarks/knowledge.py remeasure --tasks ID,... [--families F,...] --why TEXT
        [--out FILE]
    python benchmarks/knowledge.py build --corpus benchmarks/unseen.yaml

``build`` measures every missing cell (corpus task x family x this machine's device) of the
corpus (``archsearch/recommend/knowledge/corpus.yaml``): a search of that family alone through
the normal workflow (its own database, so that no earlier cell warm-starts it; the
pruner off, so every trial gets the whole step budget), at the one budget of the matrix file.
Each cell is appended to the matrix as soon as it finishes, and a later ``build`` skips the
finished ones. A cell's search keeps its database in a folder of its own under ``--work``
(default: beside the matrix, ``matrix.in-progress/``) until the cell is in the matrix: Ctrl-C or
a crash loses at most the trials that were running, and the next ``build`` resumes that search
(:func:`archsearch.workflow.resume`: finished trials kept, the budget met exactly) rather than
starting the cell again, so a cell longer than one sitting (the long tasks' slowest families)
is built over several. The sidecar JSON records each run's
provenance (commit, machine, torch/ray versions, dates, budget). ``--out`` writes another
matrix file; a budget other than the shipped one (``--trials/--steps/--cv-folds``) needs it, so
a quick build is never taken for the knowledge base. ``status`` prints how much is measured,
the mean cell time and the CPU hours the missing cells would take, per task, scaled by the
tasks' sequence lengths (:func:`hours_left`); its last line is one JSON object.
``calibrate`` (run by ``build`` after it measured a cell) writes the pairs the instant pick's
confidence is calibrated on beside the matrix (``matrix.calibration.json``,
:mod:`archsearch.recommend.calibration`): seconds, no training. ``remeasure`` takes the cells
of the given tasks (of the given families only, with ``--families``) out of the matrix (after a
change that makes them stale), records when, at which commit and why in the sidecar's
``remeasured`` list, and recalibrates; the next ``build`` measures them again.

A corpus file whose role is ``unseen`` (``benchmarks/unseen.yaml``) is measured the same way
into :data:`UNSEEN_MATRIX` (its default ``--out``; the shipped matrix is refused), with no
calibration: those tasks only judge the knowledge base (``benchmarks/recommender.py
--knowledge-base`` reports them apart).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archsearch.data.builtin import builtin_parameters  # noqa: E402
from archsearch.errors import ArchsearchError, TaskStopped, UsageError  # noqa: E402
from archsearch.options import SearchOptions  # noqa: E402
from archsearch.recommend import load_rules  # noqa: E402
from archsearch.recommend.calibration import (  # noqa: E402
    MIN_CALIBRATION_TASKS,
    calibration_path,
    write_calibration,
)
from archsearch.recommend.knowledge import (  # noqa: E402
    COMPLETED,
    CORPUS_FILE,
    FAILED,
    MATRIX_FILE,
    STANDARD_BUDGET,
    Cell,
    CellBudget,
    Corpus,
    CorpusTask,
    append_cell,
    load_corpus,
    load_knowledge_base,
    read_cells,
    read_sidecar,
    replace_text,
    sidecar_path,
    write_cells,
    write_sidecar,
)
from archsearch.space import load_space  # noqa: E402
from archsearch.space.schema import default_space_path  # noqa: E402
from archsearch.store import Store, TaskRecord, TrialRecord  # noqa: E402
from archsearch.store.lease import LeaseLost  # noqa: E402
from archsearch.types import Metric, TaskStatus, TrialStatus  # noqa: E402
from archsearch.workflow import (  # noqa: E402
    LeaseHeld,
    SearchRequest,
    left_unfinished,
    resume,
    run_task,
)

ROOT = Path(__file__).resolve().parents[1]
# The unseen sets the knowledge base is judged on, and where their cells go: never the shipped
# matrix (docs/knowledge-base.md#the-corpus).
UNSEEN_CORPUS = ROOT / "benchmarks" / "unseen.yaml"
UNSEEN_MATRIX = ROOT / "benchmarks" / "unseen" / "matrix.csv"
# What one cell measures, its search kept in the given folder: (cell, the task's facts for the
# sidecar); raises KeyboardInterrupt when it was stopped before it finished.
Measure = Callable[[CorpusTask, str, CellBudget, int, Path], tuple[Cell, dict[str, Any]]]
# In a cell's folder: its search's database, and the seconds spent on it by earlier sittings.
CELL_DB, SECONDS_SPENT = "cell.db", "seconds-spent"
# How often a sitting writes its seconds so far: a build killed without warning (kill -9, a
# reboot) leaves out at most this much of the cell's time.
SECONDS_HEARTBEAT = 5.0
# Below this many steps a cell's fixed costs (a Ray start, the floor, the report) outweigh its
# training steps, so its seconds say little of how the cost grows with length (hours_left).
MIN_SCALING_LENGTH = 128
# A task's own measured cells correct the estimate of its missing ones from this many on.
MIN_CELLS_TO_CORRECT = 3


def this_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _git(*args: str) -> str | None:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip() or None if done.returncode == 0 else None


def _written_by_builds(matrix: Path) -> list[str]:
    """Pathspecs that leave out the files a build writes (the matrix, its sidecar and its
    confidence calibration, when in the repository): a second build in one worktree changed
    only those, not the code."""
    files = [path.resolve() for path in (matrix, sidecar_path(matrix), calibration_path(matrix))]
    return [f":(exclude){file.relative_to(ROOT)}" for file in files if file.is_relative_to(ROOT)]


def provenance(budget: CellBudget, corpus: Corpus, matrix: Path) -> dict[str, Any]:
    """Where and with what one build run measures its cells (into ``matrix``)."""
    import optuna
    import ray
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"started": utc_now(),
            "commit": _git("rev-parse", "--short", "HEAD"),
            "uncommitted_changes": bool(_git("status", "--porcelain", "--untracked-files=no",
                                             "--", ".", *_written_by_builds(matrix))),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}"
                       + (f", {gpu}" if gpu else ""),
            "device": this_device(), "python": platform.python_version(),
            "torch": torch.__version__, "ray": ray.__version__, "optuna": optuna.__version__,
            "budget": dataclasses.asdict(budget), "corpus_version": corpus.version,
            "cells": 0}


def family_space(family: str, budget: CellBudget, out: Path) -> Path:
    """The default space cut to ``family``, every trial at ``budget.max_steps``; its rules
    keep what they fix in this family's parameters (a space refuses a rule on a parameter it
    does not have)."""
    raw = yaml.safe_load(default_space_path().read_text(encoding="utf-8"))
    raw["families"] = {family: raw["families"][family]}
    raw["training"]["max_steps"] = budget.max_steps
    names = set(raw["training"]) | set(raw["shared"]) | set(raw["families"][family] or {})
    rules = [{**rule, "fix": {k: v for k, v in rule["fix"].items() if k in names}}
             for rule in raw.get("rules", [])]
    raw["rules"] = [rule for rule in rules if rule["fix"]]
    path = out / f"space-{family}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def cell_folder(work: Path, task_id: str, family: str, budget: CellBudget) -> Path:
    """Where a cell's search lives until the cell is in the matrix; named by its budget too, so
    that a build at another budget never resumes it."""
    return work / (f"{task_id}--{family}--t{budget.trials}-s{budget.max_steps}"
                   f"-cv{budget.cv_folds}-seed{budget.seed}")


def stopped_search(folder: Path) -> TaskRecord | None:
    """The search a stopped build left in a cell's folder, if it got as far as storing it."""
    if not (folder / CELL_DB).exists():
        return None
    with Store(f"sqlite:///{folder / CELL_DB}") as store:
        tasks = store.list_tasks()
    return tasks[0] if tasks else None


class CellClock:
    """The seconds a cell took over all its sittings: those of earlier sittings read from its
    folder, this sitting's written there every :data:`SECONDS_HEARTBEAT` until :meth:`stop`."""

    def __init__(self, folder: Path) -> None:
        self._file = folder / SECONDS_SPENT
        self._earlier = float(self._file.read_text()) if self._file.exists() else 0.0
        self._started = time.perf_counter()
        self._stopped = threading.Event()
        self._write()
        self._thread = threading.Thread(target=self._beat, name="cell-clock", daemon=True)
        self._thread.start()

    def seconds(self) -> float:
        return round(self._earlier + time.perf_counter() - self._started, 1)

    def _write(self) -> float:
        # Replaced whole, so that a kill mid-write leaves the previous value, never half of one.
        seconds = self.seconds()
        replace_text(self._file, f"{seconds:.1f}")
        return seconds

    def _beat(self) -> None:
        while not self._stopped.wait(SECONDS_HEARTBEAT):
            self._write()

    def stop(self) -> float:
        """Stops the heartbeat and returns the cell's seconds so far (written to its folder)."""
        self._stopped.set()
        self._thread.join()
        return self._write()


def _cell_line(line: str) -> None:
    """A line of a cell's search, indented under the build's own (its trials, its folds)."""
    print(f"    {line}", flush=True)


def measure_cell(task: CorpusTask, family: str, budget: CellBudget, run: int,
                 folder: Path) -> tuple[Cell, dict[str, Any]]:
    """One cell through the normal workflow, its search in ``folder``; a search an earlier
    sitting left there is resumed (see the module docstring)."""
    clock = CellClock(folder)
    db_url = f"sqlite:///{folder / CELL_DB}"
    stopped = stopped_search(folder)
    try:
        if stopped is None:
            options = SearchOptions(budget_trials=budget.trials, seed=budget.seed,
                                    pruner="none", cv_folds=budget.cv_folds)
            request = SearchRequest(data=task.data, constraints=task.constraints,
                                    space=str(family_space(family, budget, folder)),
                                    options=options, db_url=db_url,
                                    report_dir=folder / "reports")
            result = run_task(request, printer=_cell_line)
        elif stopped.status != TaskStatus.COMPLETED.value:
            result = resume(stopped.id, db_url, printer=_cell_line)
        else:  # stopped after its search ended, before the cell was written
            result = {"status": TaskStatus.COMPLETED.value, "task_id": stopped.id}
        if result["status"] == "interrupted":
            raise KeyboardInterrupt
    finally:
        seconds = clock.stop()
    with Store(db_url) as store:
        stored = store.get_task(result["task_id"])
        trials = [t for t in store.trials(stored.id)
                  if t.status == TrialStatus.COMPLETED.value and t.val_score is not None]
    metric = stored.metric
    best = cell_trial(trials, metric)
    facts = {"data": task.data, "kind": stored.task_kind,
             "metric": {"name": metric.name, "direction": metric.direction},
             "meta_features": stored.meta_features}
    if best is None:
        return failed_cell(task.id, family, seconds, run), facts
    return Cell(task.id, family, best.device or this_device(), COMPLETED, best.val_score,
                best.test_score, best.cv_score, best.cv_std, best.cv_folds,
                round(best.train_seconds, 2), best.latency_ms, best.params,
                best.peak_memory_mb, len(trials), seconds, run, utc_now()), facts


def cell_trial(trials: list[TrialRecord], metric: Metric) -> TrialRecord | None:
    """The completed trial that stands for a cell: the search's cross-validated finalist (one
    family: at most one), as it stands for its family in the search's own ranking, even where
    another trial tied its validation score; without one, the best validation score."""
    finalists = [t for t in trials if t.cv_score is not None]
    best = None
    for trial in finalists or trials:
        if best is None or metric.better(trial.val_score, best.val_score):
            best = trial
    return best


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def failed_cell(task_id: str, family: str, seconds: float, run: int) -> Cell:
    """A cell in which no trial completed (or the workflow refused the task): recorded, so that
    a later build does not spend its budget again, with no scores."""
    return Cell(task_id, family, this_device(), FAILED, *[None] * 9, 0, seconds, run, utc_now())


def default_families() -> list[str]:
    """The families of the default space: the matrix's columns."""
    return sorted(load_space().families)


def _note(matrix: Path, corpus: Corpus, budget: CellBudget) -> str:
    """What the matrix holds of the whole corpus x the default space's families (whatever
    ``--tasks``/``--families`` a build measured)."""
    families = default_families()
    done = {(c.task, c.family) for c in read_cells(matrix) if c.family in families}
    total = len(corpus.tasks) * len(families)
    standard = budget == STANDARD_BUDGET
    if len(done) >= total and standard:
        return f"Complete: all {total} cells of corpus version {corpus.version}."
    return (f"{'Partial' if standard else 'Not the knowledge base (a non-standard budget)'}: "
            f"{len(done)} of {total} cells ({len(corpus.tasks)} tasks x {len(families)} "
            "families) measured; the rest are still to be built.")


def default_work(matrix: Path) -> Path:
    """Where a build keeps the searches of its unfinished cells by default: beside the matrix."""
    return matrix.with_name(f"{matrix.stem}.in-progress")


def build(corpus: Corpus, families: list[str], budget: CellBudget, matrix: Path,
          tasks: Iterable[str] | None = None, measure: Measure = measure_cell,
          printer: Callable[[str], None] = print, work: Path | None = None) -> int:
    """Measure every missing cell of ``tasks`` (default: the whole corpus) x ``families`` on
    this device into ``matrix``, each cell's search kept under ``work`` (default
    :func:`default_work`) until the cell is written; return how many were measured. Stops
    cleanly on Ctrl-C, and a later build resumes the stopped cell's search."""
    work = work or default_work(matrix)
    sidecar = read_sidecar(matrix)
    if sidecar["budget"] is not None and CellBudget(**sidecar["budget"]) != budget:
        raise UsageError(f"{matrix} holds cells measured at {sidecar['budget']}; a cell at "
                         f"{dataclasses.asdict(budget)} would not compare with them. Build "
                         "into another file (--out) or use its budget.")
    chosen = [corpus.task(t) for t in tasks] if tasks is not None else list(corpus.tasks)
    device = this_device()
    done = {(c.task, c.family) for c in read_cells(matrix) if c.device == device}
    todo = [(task, family) for task in chosen for family in families
            if (task.id, family) not in done]
    printer(f"{len(todo)} cell(s) to measure on {device} into {matrix} "
            f"({len(chosen) * len(families) - len(todo)} already there).")
    if not todo:
        return 0
    sidecar["budget"] = dataclasses.asdict(budget)
    sidecar["corpus_version"] = corpus.version
    sidecar["runs"].append(provenance(budget, corpus, matrix))
    run = len(sidecar["runs"]) - 1
    write_sidecar(matrix, sidecar)
    from archsearch.search.ray_backend.runtime import ray_runtime

    measured = 0
    with ray_runtime(None):  # one embedded runtime: every cell's search joins it
        for task, family in todo:
            folder = cell_folder(work, task.id, family, budget)
            if (folder / CELL_DB).exists():
                printer(f"{task.id} x {family}: resuming the search an earlier build stopped "
                        f"({folder}).")
            folder.mkdir(parents=True, exist_ok=True)
            try:
                cell, facts = measure(task, family, budget, run, folder)
            except KeyboardInterrupt:
                printer(f"Stopped during {task.id} x {family}: its finished trials are kept in "
                        f"{folder}, and the next build resumes it.")
                break
            except TaskStopped as exc:  # its surroundings stopped it (a full disk): resumable
                printer(f"Stopped during {task.id} x {family}: {exc}")
                break
            except (LeaseHeld, LeaseLost) as exc:  # another build is measuring this cell
                printer(f"{task.id} x {family}: skipped ({exc}).")
                continue
            except ArchsearchError as exc:  # the workflow refused this cell: record why not
                printer(f"{task.id} x {family}: refused ({exc}).")
                cell, facts = failed_cell(task.id, family, 0.0, run), None
            append_cell(matrix, cell)
            shutil.rmtree(folder, ignore_errors=True)  # the cell is in the matrix now
            measured += 1
            if facts is not None:
                sidecar["tasks"][task.id] = facts
            sidecar["runs"][run]["cells"] += 1
            sidecar["runs"][run]["finished"] = cell.finished_at
            sidecar["note"] = _note(matrix, corpus, budget)
            write_sidecar(matrix, sidecar)
            printer(f"{task.id} x {family}: {cell.status}, test {cell.test_score}, "
                    f"{cell.cell_seconds:g} s.")
    if work.is_dir() and not any(work.iterdir()):
        work.rmdir()
    return measured


def remeasure(corpus: Corpus, matrix: Path, tasks: list[str], why: str,
              families: list[str] | None = None) -> dict[str, Any]:
    """Take the cells of ``tasks`` (of ``families`` only, when given) out of ``matrix``, so that
    the next build measures them again; the sidecar records it. What was taken out, in short."""
    if not why.strip():
        raise UsageError("say why the cells are stale (--why TEXT): the sidecar records it.")
    for task_id in tasks:
        corpus.task(task_id)  # an unknown id is refused, with the corpus's ids
    unknown = sorted(set(families or ()) - set(default_families()))
    if unknown:
        raise UsageError(f"no family {', '.join(unknown)} in the default space; its families "
                         f"are {', '.join(default_families())}.")
    cells = read_cells(matrix)
    kept = [c for c in cells
            if c.task not in tasks or (families is not None and c.family not in families)]
    sidecar = read_sidecar(matrix)
    entry = {"date": utc_now(), "commit": _git("rev-parse", "--short", "HEAD"),
             "tasks": sorted(tasks), "cells": len(cells) - len(kept), "why": why.strip()}
    if families is not None:
        entry["families"] = sorted(families)
    write_cells(matrix, kept)
    sidecar.setdefault("remeasured", []).append(entry)
    for task_id in tasks:
        if not any(c.task == task_id for c in kept):  # facts of a task with cells left stay
            sidecar["tasks"].pop(task_id, None)
    if sidecar["budget"] is not None:
        sidecar["note"] = _note(matrix, corpus, CellBudget(**sidecar["budget"]))
    write_sidecar(matrix, sidecar)
    return entry


def task_length(task: CorpusTask, facts: dict[str, Any] | None) -> int | None:
    """Steps per sequence: measured (a task's facts in the sidecar), else the spec's ``length``
    or ``lookback`` (given or the data set's default); None when neither says."""
    if facts:
        return int(facts["meta_features"]["seq_len"])
    parameters = builtin_parameters(task.data)[1]
    return parameters.get("length") or parameters.get("lookback")


def hours_left(corpus: Corpus, cells: list[Cell], facts: dict[str, Any],
               families: list[str]) -> dict[str, float]:
    """Per corpus task with cells still missing, the CPU hours they would take at the budget's
    fixed step count: each family's median seconds per step of sequence length over its
    completed cells on tasks of at least :data:`MIN_SCALING_LENGTH` steps, times the task's
    length (the family's mean cell time where either is unknown); on a task with
    :data:`MIN_CELLS_TO_CORRECT` or more cells measured, times what its measured cells took
    over what this predicted for them (its data size, its folds, attention's steeper cost)."""
    done = {(c.task, c.family) for c in cells}
    lengths = {task.id: task_length(task, facts.get(task.id)) for task in corpus.tasks}
    per_step: dict[str, list[float]] = {f: [] for f in families}
    per_cell: dict[str, list[float]] = {f: [] for f in families}
    completed = [c for c in cells if c.status == COMPLETED and c.family in per_cell]
    for cell in completed:
        per_cell[cell.family].append(cell.cell_seconds)
        length = lengths.get(cell.task)
        if length and length >= MIN_SCALING_LENGTH:
            per_step[cell.family].append(cell.cell_seconds / length)

    def predicted(family: str, length: int | None) -> float:
        if per_step[family] and length:
            return statistics.median(per_step[family]) * length
        return statistics.fmean(per_cell[family])

    hours = {}
    for task in corpus.tasks:
        missing = [f for f in families if (task.id, f) not in done and per_cell[f]]
        if not missing:
            continue
        length = lengths[task.id]
        measured = [c for c in completed if c.task == task.id]
        correction = (sum(c.cell_seconds for c in measured)
                      / sum(predicted(c.family, length) for c in measured)
                      if len(measured) >= MIN_CELLS_TO_CORRECT else 1.0)
        seconds = correction * sum(predicted(f, length) for f in missing)
        hours[task.id] = round(seconds / 3600, 2)
    return hours


def in_progress(work: Path) -> list[dict[str, Any]]:
    """The cells a stopped build left under ``work``: each folder, its finished trials, the
    validation rounds each unfinished one reached (a long cell's progress: its resume goes on
    from the latest snapshot, taken a minute of training or more apart) and the seconds spent
    on it so far."""
    cells = []
    for folder in sorted(work.iterdir()) if work.is_dir() else []:
        stopped = stopped_search(folder)
        trials = []
        if stopped is not None:
            with Store(f"sqlite:///{folder / CELL_DB}") as store:
                trials = store.trials(stopped.id)
        spent = folder / SECONDS_SPENT
        cells.append({
            "cell": folder.name,
            "trials_finished": sum(t.status == TrialStatus.COMPLETED.value for t in trials),
            "rounds_of_unfinished_trials": {t.number: len(t.epochs) for t in trials
                                            if left_unfinished(t)},
            "seconds_spent": float(spent.read_text()) if spent.exists() else None})
    return cells


def status(corpus: Corpus, matrix: Path, work: Path | None = None) -> dict[str, Any]:
    """How much of the matrix (the corpus x the default space's families) is measured, the CPU
    time the rest would take (:func:`hours_left`), and the cells in progress under ``work``
    (default :func:`default_work`)."""
    families = default_families()
    cells = [c for c in read_cells(matrix) if c.family in families]
    total = len(corpus.tasks) * len(families)
    seconds = [c.cell_seconds for c in cells if c.status == COMPLETED]
    mean = statistics.fmean(seconds) if seconds else None
    sidecar = read_sidecar(matrix)
    left = hours_left(corpus, cells, sidecar.get("tasks", {}), families)
    return {"matrix": str(matrix), "cells": len(cells), "of": total,
            "completed": len(seconds), "failed": sum(c.status == FAILED for c in cells),
            "tasks_measured": len({c.task for c in cells}),
            "mean_cell_seconds": round(mean, 1) if mean else None,
            "hours_left_length_scaled": round(sum(left.values()), 1) if left else None,
            "hours_left_by_task": left,
            "in_progress": in_progress(work or default_work(matrix)), "note": sidecar.get("note")}


def calibrate(matrix: Path) -> dict[str, Any]:
    """Write the confidence calibration's pairs beside ``matrix`` (the default space's
    families, the shipped rules); what it holds, in short."""
    knowledge = load_knowledge_base(matrix)
    if knowledge is None:
        return {"calibration": None, "why": f"{matrix} holds no completed cell"}
    written = write_calibration(knowledge, default_families(), load_rules())
    return {"calibration": str(calibration_path(matrix)), "key": written["key"],
            "held_out_tasks": len(written["pairs"]), "min_tasks": MIN_CALIBRATION_TASKS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "status", "calibrate", "remeasure"])
    parser.add_argument("--tasks", help="corpus task ids, comma-separated (default: all)")
    parser.add_argument("--families", help="families, comma-separated (default: the default "
                                           "space's)")
    parser.add_argument("--trials", type=int, default=STANDARD_BUDGET.trials)
    parser.add_argument("--steps", type=int, default=STANDARD_BUDGET.max_steps)
    parser.add_argument("--cv-folds", type=int, default=STANDARD_BUDGET.cv_folds)
    parser.add_argument("--out", type=Path, help="the matrix file (default: the shipped "
                        "matrix; for an unseen role's corpus, benchmarks/unseen/matrix.csv)")
    parser.add_argument("--corpus", type=Path, default=CORPUS_FILE)
    parser.add_argument("--why", default="", help="remeasure: why the cells are stale")
    parser.add_argument("--work", type=Path, help="build, status: where unfinished cells keep "
                        "their searches (default: beside the matrix, MATRIX.in-progress/)")
    args = parser.parse_args(argv)
    corpus = load_corpus(args.corpus)
    unseen = corpus.role == "unseen"
    args.out = args.out or (UNSEEN_MATRIX if unseen else MATRIX_FILE)
    if unseen and args.out.resolve() == MATRIX_FILE.resolve():
        parser.error(f"{args.corpus} holds unseen sets: their cells never go into the shipped "
                     "matrix; leave --out out (benchmarks/unseen/matrix.csv) or name another "
                     "file")
    families = (args.families.split(",") if args.families
                else default_families())
    if args.command == "status":
        print(json.dumps(status(corpus, args.out, args.work)))
        return 0
    if args.command == "remeasure":
        if not args.tasks:
            parser.error("remeasure needs --tasks ID,...")
        print(json.dumps(remeasure(corpus, args.out, args.tasks.split(","), args.why,
                                   args.families.split(",") if args.families else None)))
        if not unseen:
            print(json.dumps(calibrate(args.out)))
        return 0
    if args.command == "calibrate":
        if unseen:
            parser.error("the unseen sets only judge the knowledge base: nothing is "
                         "calibrated on them")
        print(json.dumps(calibrate(args.out)))
        return 0
    budget = dataclasses.replace(STANDARD_BUDGET, trials=args.trials, max_steps=args.steps,
                                 cv_folds=args.cv_folds)
    if budget != STANDARD_BUDGET and args.out.resolve() == MATRIX_FILE.resolve():
        parser.error("a budget other than the shipped matrix's needs --out FILE")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if build(corpus, families, budget, args.out, args.tasks.split(",") if args.tasks else None,
             work=args.work) and not unseen:
        print(json.dumps(calibrate(args.out)))
    print(json.dumps(status(corpus, args.out, args.work)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ArchsearchError as exc:  # one paragraph, no traceback
        sys.exit(f"knowledge.py: error: {exc}")
