"""The instant answer behind ``archsearch recommend DATA``: rules and past data, no training.

It loads and describes the data set (meta-features: seconds at most), fits the past-task ranker
on the database and on the shipped knowledge base's corpus tasks (when it holds any), and
combines both with the rules. When the database already holds a completed
search of the same data (same fingerprint), that search's measured trials decide, under the
constraints given now.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from archsearch.recommend.calibration import StatedConfidence, state_confidence
from archsearch.recommend.combine import (
    Recommendation,
    facts_for,
    instant_recommendation,
    recommend,
)
from archsearch.recommend.knowledge import KnowledgeBase, load_knowledge_base
from archsearch.recommend.portfolio import Portfolio
from archsearch.recommend.ranker import PastEvidence, PastTask, past_evidence, stored_tasks
from archsearch.recommend.rationale import initial_design_sentence
from archsearch.store import Store, TaskRecord, TrialRecord
from archsearch.store.session import create_db_engine
from archsearch.types import Constraints, Metric, TaskStatus

if TYPE_CHECKING:
    from archsearch.data import LoadOptions


def evidence_for_task(store: Store, task: TaskRecord, families: Sequence[str],
                      knowledge: KnowledgeBase | None = None) -> PastEvidence:
    """The past-task evidence for a stored task: every other completed task in ``store``, and
    the corpus tasks of ``knowledge`` (the shipped knowledge base) when given."""
    return _with_knowledge(knowledge, store.past_results(exclude=[task.id]),
                           task.meta_features, task.task_kind, families, (),
                           task.fingerprint)


def instant_for_task(store: Store, task: TaskRecord, facts: Mapping[str, Any],
                     families: list[str], past: PastEvidence,
                     knowledge: KnowledgeBase | None = None) -> tuple[Recommendation, Portfolio]:
    """A stored task's pick before its search, and its search's initial design
    (:func:`~archsearch.recommend.combine.instant_recommendation`): the zero-shot portfolio of
    the corpus tasks of ``knowledge`` and every other completed task in ``store``, then the
    rest of the instant ranking (its order alone when no past task is near enough)."""
    return instant_recommendation(facts, families, task.metric, past,
                                  _past_tasks(knowledge, store.past_results(exclude=[task.id]),
                                              ()))


def _past_tasks(knowledge: KnowledgeBase | None,
                history: Sequence[tuple[TaskRecord, Mapping[str, TrialRecord]]],
                exclude: Sequence[int]) -> list[PastTask]:
    """The corpus tasks of ``knowledge`` and the stored tasks of ``history`` (but ``exclude``)."""
    return [*(knowledge.past_tasks() if knowledge else ()), *stored_tasks(history, exclude)]


def _with_knowledge(knowledge: KnowledgeBase | None,
                    history: Sequence[tuple[TaskRecord, Mapping[str, TrialRecord]]],
                    meta: Mapping[str, Any], task_kind: str, families: Sequence[str],
                    exclude: Sequence[int], fingerprint: str | None) -> PastEvidence:
    """:func:`past_evidence` with the knowledge base's corpus tasks joining the stored ones."""
    if knowledge is None:
        return past_evidence(history, meta, task_kind, list(families), exclude, fingerprint)
    return past_evidence(history, meta, task_kind, list(families), exclude, fingerprint,
                         corpus=knowledge.past_tasks(), knowledge=knowledge.provenance())


@dataclass(frozen=True)
class Advice:
    recommendation: Recommendation
    dataset_name: str
    meta_features: dict[str, Any]
    metric: Metric
    families: list[str]
    past: PastEvidence
    measured_task: TaskRecord | None  # the earlier search of the same data whose trials count
    database: str  # what the database said: where it is, or why it was not read
    portfolio: Portfolio  # what a search of this data would measure first
    stated: StatedConfidence | None  # an instant pick's confidence (None: trials decided)

    def to_json(self) -> dict[str, Any]:
        rec = self.recommendation
        return {
            "family": rec.family,
            "config": rec.config or None,
            "config_source": (f"task {self.measured_task.id}, trial {rec.trial_number}"
                              if self.measured_task and rec.trial_number is not None
                              else rec.config_source),
            "confidence": rec.confidence,
            "confidence_raw": self.stated.raw if self.stated else rec.confidence,
            "confidence_calibrated": bool(self.stated and self.stated.calibrated),
            "rationale": rec.rationale,
            "ranking": [r.to_dict() for r in rec.ranking],
            "measured_task_id": self.measured_task.id if self.measured_task else None,
            "past_tasks": self.past.n_tasks - self.past.n_corpus,
            "corpus_tasks": self.past.n_corpus,
            "knowledge_base": self.past.knowledge,
            "trust": rec.trust.to_dict() if rec.trust else None,
            "portfolio": self.portfolio.to_dict(),
            "dataset": self.dataset_name,
            "metric": {"name": self.metric.name, "direction": self.metric.direction},
            "meta_features": self.meta_features,
        }


def _readable_database(url: str) -> str | None:
    """Why the database is not read (None: read it). A SQLite file that does not exist is not
    created: an instant answer writes nothing."""
    engine = create_db_engine(url)  # a bad URL: the Store's DatabaseError
    parsed = engine.url
    engine.dispose()
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(parsed.database).is_file():
            return f"no database at {parsed.database} yet"
    return None


def advise(source: str, constraints: Constraints | None = None, db_url: str | None = None, *,
           load: LoadOptions | None = None, space: str | None = None) -> Advice:
    """Recommend a family for ``source`` before any search (see the module docstring).

    ``load`` says how to read ``source`` (as for a search: task, target, columns, windows).
    Raises :class:`~archsearch.errors.DataError` for data that cannot be loaded,
    :class:`~archsearch.errors.SpaceError` for a bad space file and
    :class:`~archsearch.store.DatabaseError` for a database that cannot be used.
    """
    from archsearch.data import fingerprint, load_dataset, meta_features
    from archsearch.space import load_space

    constraints = constraints or Constraints()
    dataset = load_dataset(source, load)
    meta = meta_features(dataset)
    digest = fingerprint(dataset)
    metric = Metric.for_task(dataset.task)
    families = sorted(load_space(space).families)
    knowledge = load_knowledge_base()
    history: list[tuple[TaskRecord, dict[str, TrialRecord]]] = []
    measured, trials = None, []
    skip = _readable_database(db_url) if db_url else "no database given"
    database = skip or f"read {make_url(db_url).render_as_string(hide_password=True)}"
    if skip is None:
        with Store(db_url, upgrade=False) as store:  # an old schema is refused, not upgraded
            history = store.past_results()
            same = [t for t, _ in history if t.fingerprint == digest
                    and t.status == TaskStatus.COMPLETED.value]
            if same:
                measured = same[-1]
                trials = store.trials(measured.id)
                metric = measured.metric
                families = sorted(set(families) | {t.family for t in trials})
    exclude = [measured.id] if measured else []
    past = _with_knowledge(knowledge, history, meta, dataset.task.value, families, exclude,
                           digest)
    facts = facts_for(meta, dataset.task.value, constraints.to_dict())
    rec, portfolio = instant_recommendation(facts, families, metric, past,
                                            _past_tasks(knowledge, history, exclude),
                                            constraints=constraints)
    if trials:
        rec = recommend(facts, families, metric, trials, past=past, constraints=constraints)
    stated = None
    if not trials:  # an instant pick: its confidence is stated, calibrated where it can be
        stated = state_confidence(rec.confidence, knowledge)
        rec = dataclasses.replace(rec, confidence=stated.value,
                                  rationale=[*rec.rationale, stated.sentence])
    rec.rationale.append(initial_design_sentence(portfolio))
    return Advice(rec, dataset.name, meta, metric, families, past, measured, database,
                  portfolio, stated)
