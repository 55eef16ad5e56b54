"""Honest selection on small data: k-fold cross-validation of finalists.

With few training sequences one validation split picks noise (a search was seen choosing a
model with 100% accuracy on 7 validation sequences and 50% on the test set). Finalists are
therefore retrained on k folds of train+validation; the test split is never touched.
"""

from __future__ import annotations

import dataclasses
import statistics

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

from archsearch.data import PreparedData, Split
from archsearch.trial.runner import TrialSpec, run_trial
from archsearch.types import TaskKind, TrialStatus


def cross_validation_folds(data: PreparedData, k: int, seed: int) -> list[PreparedData]:
    """k (train, validation) folds over train+validation: stratified for classification,
    expanding windows in time order for forecasting, shuffled otherwise."""
    X = np.concatenate([data.train.X, data.val.X])
    y = np.concatenate([data.train.y, data.val.y])
    lengths = np.concatenate([data.train.lengths, data.val.lengths])
    if data.task is TaskKind.FORECAST:
        splitter = TimeSeriesSplit(n_splits=k)
    elif data.task is TaskKind.CLASSIFICATION:
        smallest = int(np.bincount(y).min(initial=len(y))) if len(y) else 0
        k = max(2, min(k, smallest))
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
    folds = []
    for train_idx, val_idx in splitter.split(X, y):
        folds.append(dataclasses.replace(
            data,
            train=Split(X[train_idx], y[train_idx], lengths[train_idx]),
            val=Split(X[val_idx], y[val_idx], lengths[val_idx]),
        ))
    return folds


def fold_score(spec: TrialSpec, fold: PreparedData) -> float | None:
    """Train ``spec`` for its (fixed) number of epochs on the fold; the last epoch's
    validation score, so that no epoch is chosen on the held-out fold."""
    scores: list[float] = []
    result = run_trial(spec, fold, lambda report: scores.append(report.val_score))
    if result.outcome.status is not TrialStatus.COMPLETED or not scores:
        return None
    return scores[-1]


def summarise(scores: list[float | None]) -> tuple[float, float] | None:
    """(mean, standard deviation) over the folds; None when any fold failed."""
    if not scores or any(s is None for s in scores):
        return None
    return statistics.fmean(scores), statistics.pstdev(scores)
