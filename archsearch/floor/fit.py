"""Fit the floor on the search's training split and measure it as trials are measured."""

from __future__ import annotations

import pickle
import statistics
import time
from collections.abc import Sequence

import numpy as np
import torch

from archsearch.blocks.readout import MAX_FIT_SERIES
from archsearch.data import PreparedData, Split
from archsearch.floor.model import MIN_LENGTH, FloorModel
from archsearch.measure.timing import summarise, time_calls
from archsearch.types import FloorResult, TaskKind

LATENCY_REPEATS = 7


def score(predictions: np.ndarray, split: Split, task: TaskKind) -> float | None:
    """The task's metric as ``archsearch.trial.runner.evaluate`` computes it: accuracy
    (classification), or the mean over series of the mean squared error over outputs
    (regression, forecast, in the prepared units). None on an empty split."""
    if len(split) == 0:
        return None
    if task is TaskKind.CLASSIFICATION:
        return float(np.mean(np.asarray(predictions) == split.y))
    n = len(split)
    errors = np.asarray(predictions, np.float64).reshape(n, -1) - \
        np.asarray(split.y, np.float64).reshape(n, -1)
    return float(np.mean(np.mean(errors ** 2, axis=1)))


def fit_floor_model(data: PreparedData, seed: int, *, n_kernels: int = 10_000,
                    max_series: int = MAX_FIT_SERIES) -> tuple[FloorModel, FloorResult]:
    """Fit the floor (:class:`FloorModel`) on ``data.train``; score it on validation and test;
    time one series' prediction; weigh the pickled model. The fitted model and its record."""
    train = data.train.subset(max_series, seed)
    model = FloorModel(data.task.value, n_kernels=n_kernels, seed=seed)
    warm_up(model, data.n_features)
    start = time.perf_counter()
    model.fit(train.X, train.y)
    fit_seconds = time.perf_counter() - start
    val = score(model.predict(data.val.X), data.val, data.task)
    test = score(model.predict(data.test.X), data.test, data.task)
    one = next(s.X[:1] for s in (data.test, data.val, train) if len(s))
    latency, _ = summarise(time_calls(lambda: model.predict(one), torch.device("cpu"),
                                      warmup=1, repeats=LATENCY_REPEATS))
    size_mb = len(pickle.dumps(model.pipeline_)) / 2**20
    return model, FloorResult(model.method, val, test, fit_seconds, latency, size_mb,
                              len(train))


def warm_up(model: FloorModel, n_features: int) -> None:
    """Fit and use a copy of ``model`` on four tiny random series, so that the fit timed next
    does not include compiling MiniRocket's numba kernels (once per installation, cached:
    25-70 s on two cores) or loading them from numba's cache (about a second per process)."""
    if model.method != "minirocket+ridge":
        return
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, MIN_LENGTH, n_features)).astype(np.float32)
    y = np.array([0, 1, 0, 1]) if model.task == TaskKind.CLASSIFICATION.value \
        else rng.normal(size=4)
    FloorModel(model.task, n_kernels=84, seed=0).fit(X, y).predict(X)


def fit_floor(data: PreparedData, seed: int) -> FloorResult:
    """The floor of a prepared data set, fitted on its training split."""
    return fit_floor_model(data, seed)[1]


def floor_cv(folds: Sequence[PreparedData], seed: int, test: Split | None = None,
             max_series: int = MAX_FIT_SERIES) -> tuple[float, float, float | None]:
    """(mean, population std) of the floor's validation score over ``folds``, and the score on
    ``test`` of the fold models' bag (None without ``test``): pass
    ``archsearch.trial.crossval.cross_validation_folds(data, k, seed)``, the folds the search's
    finalists are scored (and bagged) on, so that the two compare on equal terms."""
    if not folds:
        raise ValueError("floor_cv needs at least one fold")
    scores, test_predictions = [], []
    for fold in folds:
        train = fold.train.subset(max_series, seed)
        model = FloorModel(fold.task.value, seed=seed).fit(train.X, train.y)
        value = score(model.predict(fold.val.X), fold.val, fold.task)
        if value is None:
            raise ValueError("a cross-validation fold has no validation series")
        scores.append(value)
        if test is not None and len(test):
            test_predictions.append(model.predict(test.X))
    bag_test = (score(bag_predict(test_predictions, folds[0].task), test, folds[0].task)
                if test_predictions else None)
    return statistics.fmean(scores), statistics.pstdev(scores), bag_test


def bag_predict(predictions: Sequence[np.ndarray], task: TaskKind) -> np.ndarray:
    """The bag's prediction from its members': the most voted class (ties: the lowest class
    index; the ridge classifier gives no probabilities to average), else the mean."""
    stacked = np.stack([np.asarray(p) for p in predictions])
    if task is TaskKind.CLASSIFICATION:
        votes = stacked.astype(np.int64)
        return np.array([np.bincount(column).argmax() for column in votes.T])
    return stacked.mean(axis=0)
