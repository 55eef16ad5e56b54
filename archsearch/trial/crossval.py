"""Honest selection on small data: k-fold cross-validation of finalists.

With few training sequences one validation split picks noise (a search was seen choosing a
model with 100% accuracy on 7 validation sequences and 50% on the test set). Finalists are
therefore retrained on k folds of train+validation; the test split is never touched. The fold
models of the pick are then bagged (:func:`bag_score`) when each saw at least as much data as
the single model (:func:`members_see_enough`): together they saw all of train+validation, and
their mean varies less than any one of them.
"""

from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass

import numpy as np
import torch

from archsearch.blocks import Bag, build_model, deploy
from archsearch.data import PreparedData, Split
from archsearch.trial.runner import TrialSpec, evaluate, run_trial
from archsearch.types import ArchConfig, ModelIO, TaskKind, TrialStatus


def fold_count(data: PreparedData, k: int) -> int:
    """The folds :func:`cross_validation_folds` makes when asked for ``k``: for classification
    no more than the smallest class has members (at least 2)."""
    if data.task is not TaskKind.CLASSIFICATION:
        return k
    y = np.concatenate([data.train.y, data.val.y])
    counts = np.bincount(y)[np.unique(y)] if len(y) else np.zeros(1, dtype=np.int64)
    return max(2, min(k, int(counts.min())))


def cross_validation_folds(data: PreparedData, k: int, seed: int) -> list[PreparedData]:
    """:func:`fold_count` (train, validation) folds over train+validation: stratified for
    classification, expanding windows in time order for forecasting, shuffled otherwise."""
    X = np.concatenate([data.train.X, data.val.X])
    y = np.concatenate([data.train.y, data.val.y])
    lengths = np.concatenate([data.train.lengths, data.val.lengths])
    return [dataclasses.replace(data,
                                train=Split(X[train_idx], y[train_idx], lengths[train_idx]),
                                val=Split(X[val_idx], y[val_idx], lengths[val_idx]))
            for train_idx, val_idx in _fold_indices(data, k, seed)]


def _fold_indices(data: PreparedData, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, validation) row indices into train+validation of each fold (see
    :func:`cross_validation_folds`), without copying the series."""
    # Imported here, not with the module: every trial worker imports this room, and
    # scikit-learn is over a second of a worker's start (see blocks/readout.py).
    from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

    y = np.concatenate([data.train.y, data.val.y])
    k = fold_count(data, k)
    if data.task is TaskKind.FORECAST:
        splitter = TimeSeriesSplit(n_splits=k)
    elif data.task is TaskKind.CLASSIFICATION:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        if len(y) and np.bincount(y)[np.unique(y)].min() < 2:
            # A class of one sequence cannot be in two folds (the data room refuses only data
            # sets where every class has one, see docs/data-limits.md): plain shuffled folds.
            splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros((len(y), 1)), y))


def members_see_enough(data: PreparedData, k: int, seed: int) -> bool:
    """Whether every model of :func:`cross_validation_folds` (``k``) trained on at least as
    many sequences as the single model, which trained on the training split: only then is their
    bag an answer that cannot have learnt from less. With 3 folds each saw 2/3 of
    train+validation against the training split's 80% (GunPoint: such a bag scored 0.973 on
    test, the single model 1.000); expanding forecasting windows start from a short history."""
    return min(len(train) for train, _ in _fold_indices(data, k, seed)) >= len(data.train.y)


def refit_spec(spec: TrialSpec, best_round: int | None) -> TrialSpec:
    """``spec`` trained for exactly the rounds its search trial needed to reach its best
    (no early stopping), so that a fold's score is that of its last round. Folds run after the
    trials' time, so the trial's ``train_until`` is dropped: the finalists' deadline governs
    them (a fold still running at it is cancelled)."""
    steps = spec.train.max_steps if best_round is None else best_round * spec.train.eval_every
    train = dataclasses.replace(spec.train, max_steps=min(steps, spec.train.max_steps),
                                patience=0)
    return dataclasses.replace(spec, train=train, train_until=None)


@dataclass(frozen=True)
class FoldFit:
    """One fold of a finalist: its last round's validation score, and the weights of its best
    round on the fold (early stopping on the fold's held-out part, as any trial does; the test
    split stays untouched), which join the bag."""

    score: float | None  # None: the fold did not complete, and ``error`` says why
    state: dict[str, torch.Tensor] | None
    error: str | None = None
    threads: int | None = None  # torch's threads while it trained, where known


def fold_fit(spec: TrialSpec, fold: PreparedData) -> FoldFit:
    """Train ``spec`` for its whole step budget on the fold; the last round's validation score,
    so that no round is chosen on the held-out fold (see :func:`refit_spec`), or why the fold
    failed."""
    scores: list[float] = []
    result = run_trial(spec, fold, lambda report: scores.append(report.val_score))
    outcome = result.outcome
    if outcome.status is not TrialStatus.COMPLETED:
        return FoldFit(None, None, f"{outcome.status.value}: {outcome.error}")
    if not scores:
        return FoldFit(None, None, "no validation round")
    return FoldFit(scores[-1], result.state_dict)


def summarise(fits: list[FoldFit]) -> tuple[float, float] | None:
    """(mean, standard deviation) of the folds' scores; None when any fold failed."""
    if not fits or any(f.score is None for f in fits):
        return None
    scores = [f.score for f in fits]
    return statistics.fmean(scores), statistics.pstdev(scores)


def bag_score(arch: ArchConfig, io: ModelIO, states: list[dict[str, torch.Tensor]],
              split: Split) -> float:
    """The score on ``split`` of the :class:`~archsearch.blocks.Bag` of the fold models, each
    as deployed (its int8 copy when configured so), on the CPU."""
    members = []
    for state in states:
        model = build_model(arch, io)
        model.load_state_dict(state)
        members.append(deploy(model, torch.device("cpu"))[0])
    return evaluate(Bag(members), split, io.task, torch.device("cpu"))
