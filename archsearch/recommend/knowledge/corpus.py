"""The task corpus of the knowledge base (``corpus.yaml``): which tasks the matrix measures,
and which data sets stay unseen.

A corpus file's ``role`` is ``corpus`` (the default: the tasks the shipped matrix measures,
none of them an unseen set) or ``unseen`` (``benchmarks/unseen.yaml``: tasks the knowledge
base is judged on, every one of them an unseen set of the shipped corpus file's list)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from archsearch.data.builtin import builtin_name
from archsearch.errors import ArchsearchError
from archsearch.types import Constraints

CORPUS_FILE = Path(__file__).with_name("corpus.yaml")
_TASK_KEYS = {"id", "data", "axes", "constraints"}
ROLES = ("corpus", "unseen")


@dataclass(frozen=True)
class CorpusTask:
    id: str  # stable: the matrix's key
    data: str  # a ``builtin:`` spec
    axes: str  # what it covers, in words
    constraints: Constraints = field(default_factory=Constraints)


@dataclass(frozen=True)
class Corpus:
    version: int
    tasks: tuple[CorpusTask, ...]
    unseen: dict[str, list[str]]  # package -> data sets kept out of the corpus and all tuning
    role: str = "corpus"  # or "unseen": the tasks are unseen sets, to judge the corpus on

    def task(self, task_id: str) -> CorpusTask:
        for task in self.tasks:
            if task.id == task_id:
                return task
        raise ArchsearchError(f"no corpus task '{task_id}'; the corpus has "
                              f"{', '.join(t.id for t in self.tasks)}.")


def load_corpus(path: Path = CORPUS_FILE) -> Corpus:
    """Read and check a corpus file; every problem names the file and the task."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ArchsearchError(f"{path}: cannot read the corpus ({str(exc).splitlines()[0]}).") \
            from None
    if not isinstance(raw, dict) or not isinstance(raw.get("version"), int) \
            or not isinstance(raw.get("tasks"), list):
        raise ArchsearchError(f"{path}: a corpus is a mapping with an integer version and a "
                              "list of tasks.")
    role = raw.get("role", "corpus")
    if role not in ROLES:
        raise ArchsearchError(f"{path}: role must be one of {', '.join(ROLES)}, not '{role}'.")
    if role == "unseen":
        if "unseen" in raw:
            raise ArchsearchError(f"{path}: the unseen sets are listed once, in {CORPUS_FILE}; "
                                  "an unseen role's file does not list them again.")
        unseen = load_corpus().unseen
    else:
        unseen = {str(k): [str(name) for name in v]
                  for k, v in (raw.get("unseen") or {}).items()}
    unseen_names = {name.lower() for names in unseen.values() for name in names}
    tasks: list[CorpusTask] = []
    for index, item in enumerate(raw["tasks"]):
        where = f"{path}: task {index}"
        if not isinstance(item, dict) or not {"id", "data", "axes"} <= set(item) \
                or set(item) - _TASK_KEYS:
            raise ArchsearchError(f"{where}: a task has id, data, axes and optionally "
                                  "constraints.")
        where = f"{where} ({item['id']})"
        data = str(item["data"])
        if not data.startswith("builtin:"):
            raise ArchsearchError(f"{where}: data must be a builtin: spec, not '{data}'.")
        is_unseen = builtin_name(data) in unseen_names
        if is_unseen != (role == "unseen"):
            raise ArchsearchError(f"{where}: {data} is one of the unseen sets." if is_unseen
                                  else f"{where}: {data} is not one of the unseen sets (the "
                                  f"unseen list of {CORPUS_FILE.name}).")
        if any(task.id == str(item["id"]) for task in tasks):
            raise ArchsearchError(f"{where}: the id is used by an earlier task.")
        constraints: dict[str, Any] = item.get("constraints") or {}
        try:
            checked = Constraints(**constraints)
        except TypeError as exc:
            raise ArchsearchError(f"{where}: bad constraints: {exc}.") from None
        tasks.append(CorpusTask(str(item["id"]), data, str(item["axes"]), checked))
    return Corpus(raw["version"], tuple(tasks), unseen, role)
