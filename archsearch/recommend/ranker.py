"""The data half of the recommender: what past tasks say about this one.

Glossary:
- *meta-features*: the data room's description of a data set (``archsearch.data.meta``);
  :func:`~archsearch.recommend.similarity.meta_vector` turns them into a fixed-length row and
  :func:`~archsearch.recommend.similarity.pairwise_distances` says how far apart two rows are
  (the one task distance of the recommender).
- *normalised family score*: on one past task, ``(s_f - s_worst) / (s_best - s_worst)`` over
  the families measured there, with ``s`` the best validation score of each family, signed so
  that higher is better (an error, as mean squared error, as ``-log(error)``): 1 = the best
  measured family, 0 = the worst. A family not measured on a task is NaN there.
- :class:`FamilyScoreRegressor`: a scikit-learn estimator, meta-feature rows -> one normalised
  score per family (k nearest past tasks by the task distance, distance-weighted; one
  neighbour model per family, fitted on the tasks that measured it).
- :class:`PastTask`: one task learned from: a completed search in the user's database, or a
  corpus task of the shipped knowledge base (:mod:`archsearch.recommend.knowledge`); the two
  join in one table.
- :class:`PastEvidence`: the ranker's answer for one task, with what backs it (how many past
  tasks, the nearest ones, a configuration to start from), or why there is none.
- :class:`HeldOutTask`: one past task predicted from the other past tasks, beside what it
  measured: the cases on which the combination calibrates how far to trust the ranker.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from archsearch.recommend.estimator import Estimator
from archsearch.recommend.similarity import (
    FEATURE_NAMES,
    MAX_NEIGHBOUR_DISTANCE,
    meta_vector,
    pairwise_distances,
)
from archsearch.store.records import TaskRecord, TrialRecord
from archsearch.types import Metric

MIN_TASKS = 2  # with fewer usable past tasks the ranker has nothing to say
# At most this many (the most recent) past tasks are held out one at a time, so that the
# calibration costs O(n) fits, not O(n^2) work, on a large database.
MAX_HELD_OUT = 50
MIN_ERROR = 1e-12  # an error of 0 (a perfect fit) counts as this on the log scale
TIED_WITH_BEST = 1e-9  # a normalised score this close to 1 is a best family's


WEIGHTS = ("distance", "uniform")


def _nearest(distances: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances, column indices) of each row's ``k`` nearest columns, nearest first (ties
    in column order)."""
    order = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(distances, order, axis=1), order


def _neighbour_mean(distances: np.ndarray, values: np.ndarray, k: int,
                    weights: str) -> np.ndarray:
    """Each row's mean of ``values`` over its ``k`` nearest columns, weighted by inverse
    distance (``"distance"``; training rows at distance 0 alone, equally, where there are any)
    or equally (``"uniform"``): scikit-learn's ``KNeighborsRegressor`` on precomputed distances.
    """
    near, order = _nearest(distances, k)
    if weights == "uniform":
        w = np.ones_like(near)
    else:
        exact = near == 0
        with np.errstate(divide="ignore"):
            w = np.where(exact.any(axis=1, keepdims=True), exact.astype(float), 1.0 / near)
    return (w * values[order]).sum(axis=1) / w.sum(axis=1)


def best_families(normalised: Mapping[str, float]) -> list[str]:
    """The families of one task's :func:`normalised_scores` tied with the best (1): several
    where test scores tie (a test set of 200 sequences scores accuracy in steps of 0.005)."""
    return [f for f, s in normalised.items() if s >= 1.0 - TIED_WITH_BEST]


def normalised_scores(best: Mapping[str, float], maximize: bool) -> dict[str, float]:
    """Best-per-family scores of one task -> 0 (worst family) .. 1 (best family).

    An error (``maximize`` False) counts on a log scale, so that a family twice as far off
    costs the same among good families as among poor ones: on a linear scale one diverged
    family (adding problem: MSE 0.125 beside 0.0003-0.007) put every other family within 0.05
    of the best. Fewer than two families: no comparison, so ``{}``. All equal: every family 1.
    """
    signed = {f: (v if maximize else -math.log(max(v, MIN_ERROR))) for f, v in best.items()
              if v is not None and math.isfinite(v)}
    if len(signed) < 2:
        return {}
    low, high = min(signed.values()), max(signed.values())
    if high - low <= 1e-12 * max(1.0, abs(high)):
        return dict.fromkeys(signed, 1.0)
    return {f: (v - low) / (high - low) for f, v in signed.items()}


class FamilyScoreRegressor(Estimator):
    """Meta-features -> normalised score per family, from past tasks (scikit-learn estimator).

    ``fit(X, Y)``: ``X`` (n_tasks, n_features) rows of
    :func:`~archsearch.recommend.similarity.meta_vector` (NaN: missing); ``Y`` (n_tasks,
    n_families) holds normalised scores, NaN where a task did not measure a family. Each family
    gets its own distance-weighted k-nearest-neighbour model over the tasks that measured it,
    by the recommender's task distance. ``predict(X)`` returns (n, n_families), NaN for a
    family no training task measured.

    Parameters: ``n_neighbors`` (k, capped at the tasks available per family) and ``weights``
    (``"distance"`` or ``"uniform"``, as in :class:`~sklearn.neighbors.KNeighborsRegressor`,
    whose predictions it reproduces (a test checks) without scikit-learn's import: see
    :mod:`archsearch.recommend.estimator`).
    """

    def __init__(self, n_neighbors: int = 3, weights: str = "distance") -> None:
        self.n_neighbors = n_neighbors
        self.weights = weights

    def fit(self, X: Any, y: Any) -> FamilyScoreRegressor:
        X = np.asarray(X, dtype=np.float64)
        Y = np.asarray(y, dtype=np.float64)
        if Y.ndim == 1:
            Y = Y[:, None]
        if X.ndim != 2 or len(X) != len(Y) or len(X) == 0:
            raise ValueError(f"X must be (n_tasks, n_features) and y (n_tasks, n_families) "
                             f"with n_tasks >= 1; got {X.shape} and {Y.shape}")
        if X.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"X must have the {len(FEATURE_NAMES)} columns of meta_vector, "
                             f"got {X.shape[1]}")
        if self.n_neighbors < 1:
            raise ValueError(f"n_neighbors must be >= 1, got {self.n_neighbors}")
        if self.weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}, got {self.weights!r}")
        self.n_features_in_ = X.shape[1]
        self.n_outputs_ = Y.shape[1]
        self.X_ = X
        self.Y_ = Y
        self.support_ = (~np.isnan(Y)).sum(axis=0)
        return self

    def _distances(self, X: Any) -> np.ndarray:
        """(n, n_tasks) distances from the rows of ``X`` to the training tasks."""
        if not hasattr(self, "Y_"):
            raise ValueError("this FamilyScoreRegressor is not fitted yet; call fit(X, y) first")
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have {self.n_features_in_} columns, got shape {X.shape}")
        return pairwise_distances(X, self.X_)

    def predict(self, X: Any) -> np.ndarray:
        distances = self._distances(X)
        out = np.full((len(distances), self.n_outputs_), np.nan)
        for j in range(self.n_outputs_):
            rows = np.flatnonzero(~np.isnan(self.Y_[:, j]))  # the tasks that measured family j
            if len(rows):
                out[:, j] = np.clip(_neighbour_mean(distances[:, rows], self.Y_[rows, j],
                                                    min(self.n_neighbors, len(rows)),
                                                    self.weights), 0.0, 1.0)
        return out

    def kneighbors(self, X: Any, n_neighbors: int = 3) -> tuple[np.ndarray, np.ndarray]:
        """(distances, row indices) of the nearest training tasks, over all families."""
        distances = self._distances(X)
        return _nearest(distances, n_neighbors)

    def score(self, X: Any, y: Any) -> float:
        """Masked R^2 over the measured entries of ``y`` (higher is better, 1 is perfect)."""
        Y = np.asarray(y, dtype=np.float64)
        if Y.ndim == 1:
            Y = Y[:, None]
        P = self.predict(X)
        mask = ~np.isnan(Y) & ~np.isnan(P)
        if not mask.any():
            return math.nan
        residual = ((Y - P)[mask] ** 2).sum()
        total = ((Y[mask] - Y[mask].mean()) ** 2).sum()
        return float(1.0 - residual / total) if total > 0 else float(residual == 0)


@dataclass(frozen=True)
class PastTask:
    """One task the ranker learns from: a completed search in the database, or a corpus task
    of the shipped knowledge base (``task_id`` None; :mod:`archsearch.recommend.knowledge`)."""

    name: str  # the data set's name, or the corpus task's id
    task_id: int | None
    task_kind: str
    meta_features: Mapping[str, Any]
    constraints: Mapping[str, Any]
    metric: Metric
    scores: dict[str, float]  # each family's best score by ``metric``
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # family -> its best
    config_sources: dict[str, str] = field(default_factory=dict)  # family -> "task 3, trial 4"
    fingerprint: str | None = None
    seed: int | None = None


def stored_tasks(past: Sequence[tuple[TaskRecord, Mapping[str, TrialRecord]]],
                 exclude: Iterable[int] = ()) -> list[PastTask]:
    """:meth:`archsearch.store.Store.past_results` (but the tasks in ``exclude``) as
    :class:`PastTask`: each family's best validation score and configuration."""
    excluded = set(exclude)
    return [PastTask(task.dataset_name, task.id, task.task_kind, task.meta_features,
                     task.constraints, task.metric,
                     {f: t.val_score for f, t in best.items()},
                     {f: dict(t.config) for f, t in best.items()},
                     {f: f"task {task.id}, trial {t.number}" for f, t in best.items()},
                     task.fingerprint, task.seed)
            for task, best in past if task.id not in excluded]


@dataclass(frozen=True)
class TrainingTable:
    """Past tasks as a learning problem: X (tasks x features), Y (tasks x families)."""

    X: np.ndarray
    Y: np.ndarray
    families: list[str]
    tasks: list[PastTask]


def training_table(past: Sequence[PastTask],
                   families: Iterable[str] | None = None) -> TrainingTable:
    """Build the table; tasks that measured fewer than two of ``families`` (nothing to
    compare) are left out. ``families`` defaults to every family seen."""
    names = sorted(set(families) if families is not None
                   else {f for task in past for f in task.scores})
    X, Y, tasks = [], [], []
    for task in past:
        scores = normalised_scores({f: v for f, v in task.scores.items() if f in names},
                                   task.metric.maximizes)
        if not scores:
            continue
        X.append(meta_vector(task.meta_features, task.task_kind))
        Y.append([scores.get(f, math.nan) for f in names])
        tasks.append(task)
    return TrainingTable(np.asarray(X, dtype=np.float64).reshape(len(X), len(FEATURE_NAMES)),
                         np.asarray(Y, dtype=np.float64).reshape(len(Y), len(names)),
                         names, tasks)


@dataclass(frozen=True)
class Neighbour:
    task_id: int | None  # None: a corpus task of the knowledge base
    dataset_name: str
    distance: float
    best_family: str


def trust_weight(support: int, n_neighbors: int) -> float:
    """Trust in a prediction backed by ``support`` past tasks: n / (n + 2), n = min(k, support)."""
    n = min(n_neighbors, support)
    return n / (n + 2.0)


@dataclass(frozen=True)
class HeldOutTask:
    """A past task predicted by the ranker fitted on the other past tasks."""

    task: PastTask
    scores: dict[str, float]  # predicted 0..1 per family
    weights: dict[str, float]  # trust per predicted family (:func:`trust_weight`)
    truth: dict[str, float]  # what the task measured, normalised (NaN-free)


@dataclass(frozen=True)
class PastEvidence:
    """What past tasks predict for this one (``available`` False: too few, the rules decide)."""

    available: bool
    n_tasks: int  # usable past tasks, corpus tasks included
    scores: dict[str, float] = field(default_factory=dict)  # predicted 0..1 per family
    support: dict[str, int] = field(default_factory=dict)  # past tasks that measured a family
    neighbours: list[Neighbour] = field(default_factory=list)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # family -> config to try
    config_sources: dict[str, str] = field(default_factory=dict)  # family -> "task 3, trial 4"
    same_data: list[tuple[int, int, str]] = field(default_factory=list)  # (task, seed, winner)
    n_neighbors: int = 3
    held_out: list[HeldOutTask] = field(default_factory=list)
    n_corpus: int = 0  # of n_tasks, corpus tasks of the knowledge base
    knowledge: str | None = None  # the knowledge base's provenance, when it was consulted
    nearest: float | None = None  # set when the nearest task was too far to predict from

    def weight(self, family: str) -> float:
        """How much to trust the prediction for ``family`` (:func:`trust_weight`)."""
        if family not in self.scores:
            return 0.0
        return trust_weight(self.support.get(family, 0), self.n_neighbors)

    def to_dict(self) -> dict[str, Any]:
        return {"available": self.available, "n_tasks": self.n_tasks,
                "n_corpus": self.n_corpus, "knowledge": self.knowledge, "scores": self.scores,
                "support": self.support,
                "neighbours": [n.__dict__ for n in self.neighbours]}


NO_PAST = PastEvidence(False, 0)


def past_evidence(past: Sequence[tuple[TaskRecord, Mapping[str, TrialRecord]]],
                  meta: Mapping[str, Any], task_kind: str, families: Sequence[str],
                  exclude: Iterable[int] = (), fingerprint: str | None = None,
                  n_neighbors: int = 3, corpus: Sequence[PastTask] = (),
                  knowledge: str | None = None) -> PastEvidence:
    """Fit the ranker on ``past`` (minus ``exclude``) and the ``corpus`` tasks of the shipped
    knowledge base (``knowledge``: its provenance), and predict for this task's ``meta``.

    ``fingerprint``: this data set's, to report earlier searches of the same data (their
    seeds and winners: stability across seeds).
    """
    # The corpus first: the most recent tasks, the user's own, are always among those held out.
    table = training_table([*corpus, *stored_tasks(past, exclude)], families)
    n_corpus = sum(task.task_id is None for task in table.tasks)
    same = []
    for task, row in zip(table.tasks, table.Y, strict=True):
        if fingerprint and task.fingerprint == fingerprint:
            same.append((task.task_id, task.seed, table.families[int(np.nanargmax(row))]))
    if len(table.tasks) < MIN_TASKS:
        return PastEvidence(False, len(table.tasks), same_data=same, n_neighbors=n_neighbors,
                            n_corpus=n_corpus, knowledge=knowledge if n_corpus else None)
    model = FamilyScoreRegressor(n_neighbors=n_neighbors).fit(table.X, table.Y)
    x = meta_vector(meta, task_kind)[None, :]
    distances, order = model.kneighbors(x, len(table.tasks))  # every task, nearest first
    nearest = float(distances[0, 0])
    if nearest > MAX_NEIGHBOUR_DISTANCE:
        return PastEvidence(False, len(table.tasks), same_data=same, n_neighbors=n_neighbors,
                            n_corpus=n_corpus, knowledge=knowledge if n_corpus else None,
                            nearest=nearest)
    predicted = model.predict(x)[0]
    scores = {f: float(v) for f, v in zip(table.families, predicted, strict=True)
              if not math.isnan(v)}
    support = {f: int(n) for f, n in zip(table.families, model.support_, strict=True)}
    neighbours, configs, sources = [], {}, {}
    for distance, index in zip(distances[0, :n_neighbors], order[0, :n_neighbors],
                               strict=True):
        task = table.tasks[index]
        winner = table.families[int(np.nanargmax(table.Y[index]))]
        neighbours.append(Neighbour(task.task_id, task.name, float(distance), winner))
    # A configuration to start from, per family: its best trial on the nearest past task
    # that measured it and kept its configuration.
    for index in order[0]:
        task = table.tasks[index]
        for family, config in task.configs.items():
            if family in scores and family not in configs:
                configs[family] = dict(config)
                sources[family] = task.config_sources[family]
    return PastEvidence(True, len(table.tasks), scores, support, neighbours, configs, sources,
                        same, n_neighbors, _held_out(table, n_neighbors), n_corpus,
                        knowledge if n_corpus else None)


def _held_out(table: TrainingTable, n_neighbors: int) -> list[HeldOutTask]:
    """Each of the most recent :data:`MAX_HELD_OUT` tasks, predicted from all the others."""
    cases = []
    for index in range(max(0, len(table.tasks) - MAX_HELD_OUT), len(table.tasks)):
        rest = np.arange(len(table.tasks)) != index
        if rest.sum() < MIN_TASKS:
            continue
        model = FamilyScoreRegressor(n_neighbors=n_neighbors).fit(table.X[rest], table.Y[rest])
        predicted = model.predict(table.X[index:index + 1])[0]
        scores = {f: float(v) for f, v in zip(table.families, predicted, strict=True)
                  if not math.isnan(v)}
        weights = {f: trust_weight(int(n), n_neighbors)
                   for f, n in zip(table.families, model.support_, strict=True) if f in scores}
        truth = {f: float(v) for f, v in zip(table.families, table.Y[index], strict=True)
                 if not math.isnan(v)}
        cases.append(HeldOutTask(table.tasks[index], scores, weights, truth))
    return cases
