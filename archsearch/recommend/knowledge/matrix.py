"""The performance matrix of the knowledge base and its provenance.

``matrix.csv`` holds one row (a *cell*) per (corpus task, family, device): a small search of
that family alone on that task under the file's one budget (:class:`CellBudget`), with its best
trial's validation and test score, cross-validated mean and spread where the data is small,
training seconds, latency, parameters and peak memory. Cells are appended as they finish, so a
build that stops loses at most the cell it was running. CPU and GPU cells carry their device
and are never compared with each other.

``matrix.json`` (the sidecar) holds the provenance: the budget, the corpus version, one entry
per build run (commit, machine, torch/ray versions, dates; a cell's ``run`` indexes it), a
``note`` saying how complete the matrix is, and per corpus task its kind, metric and
meta-features (what the recommender compares a new task with, without loading the data).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from archsearch.data.builtin import is_synthetic
from archsearch.errors import ArchsearchError
from archsearch.recommend.knowledge.corpus import Corpus, load_corpus
from archsearch.recommend.ranker import PastTask
from archsearch.types import Metric

KNOWLEDGE_DIR = Path(__file__).parent
MATRIX_FILE = KNOWLEDGE_DIR / "matrix.csv"
COMPLETED, FAILED = "completed", "failed"


def sidecar_path(matrix: Path) -> Path:
    return matrix.with_suffix(".json")


@dataclass(frozen=True)
class CellBudget:
    """The compute of one cell, equal for every cell of a matrix: a search of ``trials``
    trials of the family alone (seeded with ``seed``), each at most ``max_steps`` optimiser
    steps; on small data its finalists re-scored by ``cv_folds``-fold cross-validation (0:
    off), as in any search."""

    trials: int = 4
    max_steps: int = 300
    cv_folds: int = 5
    seed: int = 0


# The budget of the shipped matrix: a build at another budget writes elsewhere (--out).
STANDARD_BUDGET = CellBudget()


@dataclass(frozen=True)
class Cell:
    task: str  # corpus task id
    family: str
    device: str  # "cpu" or "cuda": where the cell's trials ran
    status: str  # COMPLETED (a trial completed) or FAILED (none did)
    val_score: float | None  # the best trial's, by the task's metric
    test_score: float | None
    cv_mean: float | None  # small data: the best trial's k-fold mean and spread
    cv_std: float | None
    cv_folds: int | None
    train_seconds: float | None  # the best trial's
    latency_ms: float | None
    params: int | None
    peak_memory_mb: float | None
    trials: int  # completed trials in the cell
    cell_seconds: float  # the whole cell's wall time
    run: int  # index of the build run in the sidecar's provenance
    finished_at: str  # ISO date, UTC


CELL_COLUMNS = tuple(f.name for f in fields(Cell))
_PARSERS = {f.name: f.type for f in fields(Cell)}


def _parse(column: str, raw: str) -> Any:
    kind = _PARSERS[column]
    if raw == "":
        return None
    if kind.startswith("int"):
        return int(raw)
    if kind.startswith("float"):
        return float(raw)
    return raw


def read_cells(path: Path = MATRIX_FILE) -> list[Cell]:
    """Every cell of a matrix file ([] when there is none)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != CELL_COLUMNS:
            raise ArchsearchError(f"{path}: the columns must be {', '.join(CELL_COLUMNS)}.")
        return [Cell(**{k: _parse(k, v) for k, v in row.items()}) for row in reader]


def append_cell(path: Path, cell: Cell) -> None:
    """Append one cell and make it durable before returning (a crash after it keeps it)."""
    new = not path.is_file() or path.stat().st_size == 0
    _write(path, "a", [cell], header=new)


def write_cells(path: Path, cells: list[Cell]) -> None:
    """Replace a matrix file with ``cells``, atomically (a crash leaves the old or the new
    file, whole)."""
    partial = path.with_suffix(".csv.partial")
    _write(partial, "w", cells, header=True)
    os.replace(partial, path)


def _write(path: Path, mode: str, cells: list[Cell], header: bool) -> None:
    """Write ``cells`` (and the header) to ``path`` opened in ``mode``, durably."""
    with path.open(mode, newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, CELL_COLUMNS)
        if header:
            writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in asdict(cell).items()}
                         for cell in cells)
        handle.flush()
        os.fsync(handle.fileno())


def read_sidecar(matrix: Path = MATRIX_FILE) -> dict[str, Any]:
    """The provenance beside ``matrix`` (an empty one when there is none yet)."""
    path = sidecar_path(matrix)
    if not path.is_file():
        return {"format": 1, "corpus_version": None, "budget": None, "note": None, "runs": [],
                "tasks": {}}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ArchsearchError(f"{path}: cannot read the provenance ({exc}).") from None


def replace_text(path: Path, text: str) -> None:
    """Replace a file's text atomically (a crash leaves the old or the new text, whole)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def write_sidecar(matrix: Path, sidecar: dict[str, Any]) -> None:
    """Replace the provenance atomically."""
    replace_text(sidecar_path(matrix), json.dumps(sidecar, indent=1, sort_keys=True) + "\n")


@dataclass(frozen=True)
class CorpusTaskFacts:
    """What the recommender knows of a measured corpus task without loading its data."""

    id: str
    data: str  # its ``builtin:`` source
    kind: str
    metric: Metric
    meta_features: dict[str, Any]
    constraints: dict[str, Any]  # the corpus task's (e.g. streaming), as a search stores them

    @property
    def source(self) -> str:
        """``synthetic`` (drawn by a generator) or ``real`` (recorded data)."""
        return "synthetic" if is_synthetic(self.data) else "real"


@dataclass(frozen=True)
class KnowledgeBase:
    """The completed cells of one device, with the facts of their tasks and the provenance."""

    cells: tuple[Cell, ...]
    tasks: dict[str, CorpusTaskFacts]
    budget: CellBudget
    note: str
    runs: tuple[dict[str, Any], ...]
    source: Path
    pending: tuple[str, ...] = ()  # tasks still being built: their cells are not used yet
    role: str = "corpus"  # the role of the corpus file its tasks come from ("unseen": judged on)

    def scores(self, split: str = "test") -> dict[str, dict[str, float]]:
        """Per corpus task, each family's test score (the matrix's measure of a family), or
        with ``split`` "val" the validation score its cell's search chose by."""
        out: dict[str, dict[str, float]] = {}
        for cell in self.cells:
            score = {"test": cell.test_score, "val": cell.val_score}[split]
            if score is not None:
                out.setdefault(cell.task, {})[cell.family] = score
        return out

    def past_tasks(self) -> list[PastTask]:
        """The measured corpus tasks as the past-task ranker's tasks (scored by test score;
        the matrix keeps no configurations)."""
        scores = self.scores()
        return [PastTask(facts.id, None, facts.kind, facts.meta_features, facts.constraints,
                         facts.metric, scores[facts.id])
                for facts in self.tasks.values() if facts.id in scores]

    def provenance(self) -> str:
        """One sentence: what the knowledge base is and where it comes from."""
        commits = sorted({run.get("commit") or "?" for run in self.runs})
        dates = sorted(run.get("started", "?")[:10] for run in self.runs)
        span = dates[0] if len(set(dates)) == 1 else f"{dates[0]} to {dates[-1]}"
        return (f"Knowledge base {self.source.name}: {len(self.cells)} cells on "
                f"{len(self.tasks)} {self.role} tasks ({self.cells[0].device}), "
                f"{self.budget.trials} trials of {self.budget.max_steps} steps per cell, "
                f"measured {span} at commit "
                f"{', '.join(commits)}. {self.note}"
                + (f" Not used yet: the cells of {', '.join(self.pending)}, still being built "
                   "(not every family measured)." if self.pending else ""))


def load_knowledge_base(matrix: Path = MATRIX_FILE, device: str = "cpu",
                        corpus: Corpus | None = None) -> KnowledgeBase | None:
    """The matrix's completed ``device`` cells (None: no such cell, or no matrix file), with
    the constraints of their tasks from ``corpus`` (default: the shipped corpus).

    Only tasks with a cell (completed or failed) for every family the matrix measured anywhere
    count: a task a build is still measuring would compare a few families as if they were all
    (the portfolio counts a family a task did not measure as its worst); such tasks are
    ``pending``."""
    rows = [c for c in read_cells(matrix) if c.device == device]
    families = {c.family for c in rows}
    measured: dict[str, set[str]] = {}
    for cell in rows:
        measured.setdefault(cell.task, set()).add(cell.family)
    pending = tuple(sorted(task for task, done in measured.items() if done != families))
    cells = tuple(c for c in rows if c.status == COMPLETED and c.task not in pending)
    if not cells:
        return None
    corpus = corpus or load_corpus()
    sidecar = read_sidecar(matrix)
    tasks = {}
    for task_id, facts in sidecar["tasks"].items():
        constraints = next((t.constraints.to_dict() for t in corpus.tasks if t.id == task_id),
                           {})
        tasks[task_id] = CorpusTaskFacts(task_id, facts["data"], facts["kind"],
                                         Metric(**facts["metric"]), facts["meta_features"],
                                         constraints)
    missing = sorted({c.task for c in cells} - set(tasks))
    if missing:
        raise ArchsearchError(f"{sidecar_path(matrix)}: no facts for the measured task(s) "
                              f"{', '.join(missing)}.")
    return KnowledgeBase(cells, {t: tasks[t] for t in sorted({c.task for c in cells})},
                         CellBudget(**sidecar["budget"]), sidecar.get("note") or "",
                         tuple(sidecar["runs"]), matrix, pending, corpus.role)
