import dataclasses

import numpy as np
import pytest
import torch

from archsearch.blocks import Bag, build_bag, build_model
from archsearch.data import PreparedData, Split
from archsearch.trial import TrialSpec
from archsearch.trial.crossval import (
    FoldFit,
    bag_score,
    cross_validation_folds,
    fold_fit,
    members_see_enough,
    summarise,
)
from archsearch.trial.runner import evaluate, model_io
from archsearch.types import ArchConfig, Constraints, TaskKind, TrainConfig


def classification_data(n_per_class=(30, 10)) -> PreparedData:
    y = np.concatenate([np.full(n, label) for label, n in enumerate(n_per_class)])
    X = np.random.default_rng(0).normal(size=(len(y), 6, 1)).astype(np.float32)
    split = Split(X, y.astype(np.int64), np.full(len(y), 6))
    test = Split(X[:4] + 100, y[:4].astype(np.int64), np.full(4, 6))
    return PreparedData("c", TaskKind.CLASSIFICATION, split, Split(X[:0], y[:0], y[:0]), test,
                        1, 2, 6)


def test_folds_partition_train_and_validation_and_keep_the_test_split():
    data = classification_data()
    folds = cross_validation_folds(data, 5, seed=0)
    assert len(folds) == 5
    held = np.concatenate([f.val.X[:, 0, 0] for f in folds])
    assert sorted(held.tolist()) == sorted(data.train.X[:, 0, 0].tolist())  # each once
    for fold in folds:
        assert fold.test is data.test  # never used for choosing
        assert set(fold.val.y.tolist()) == {0, 1}  # stratified: every class in every fold
        assert len(fold.train) + len(fold.val) == 40


def test_fold_count_shrinks_to_the_smallest_class():
    assert len(cross_validation_folds(classification_data((20, 3)), 5, seed=0)) == 3


def test_forecast_folds_are_in_time_order():
    X = np.arange(60, dtype=np.float32).reshape(20, 3, 1)
    split = Split(X, np.arange(20, dtype=np.float32)[:, None], np.full(20, 3))
    data = PreparedData("f", TaskKind.FORECAST, split, Split(X[:0], split.y[:0], split.lengths[:0]),
                        split, 1, 1, 3)
    for fold in cross_validation_folds(data, 4, seed=0):
        assert fold.train.y.max() < fold.val.y.min()  # no future in training


def test_fold_models_are_bagged_only_when_each_saw_as_much_as_the_single_model():
    # 40 training and 10 validation sequences, as the 80/20 split makes them: 5 folds train on
    # 40 each, 3 on about 33, and forecasting's first expanding window on a short history.
    whole = classification_data((30, 20))
    data = dataclasses.replace(whole, train=_rows(whole.train, slice(0, 40)),
                               val=_rows(whole.train, slice(40, 50)))
    assert members_see_enough(data, 5, seed=0)
    assert not members_see_enough(data, 3, seed=0)
    forecast = dataclasses.replace(data, task=TaskKind.FORECAST)
    assert not members_see_enough(forecast, 5, seed=0)


def _rows(split: Split, rows: slice) -> Split:
    return Split(split.X[rows], split.y[rows], split.lengths[rows])


def test_fold_fit_trains_a_real_model_and_keeps_its_weights(tiny_data):
    fold = cross_validation_folds(tiny_data, 3, seed=0)[0]
    spec = TrialSpec(ArchConfig("gru", {"d_model": 8}), TrainConfig(max_steps=4, eval_every=2))
    fit = fold_fit(spec, fold)
    assert fit is not None and fit.score > 0
    model = build_model(spec.arch, model_io(fold, spec.constraints))
    model.load_state_dict(fit.state)  # the fold's model, whole
    state = {"w": torch.zeros(1)}
    assert summarise([FoldFit(1.0, state), FoldFit(3.0, state)]) == (2.0, 1.0)
    # A fold that cannot complete (here: over a parameter limit) says why, and no mean is made.
    failed = fold_fit(dataclasses.replace(spec, constraints=Constraints(max_params=10)), fold)
    assert failed.score is None and failed.state is None and "infeasible" in failed.error
    assert summarise([FoldFit(1.0, state), failed]) is None


@pytest.mark.parametrize("task", [TaskKind.CLASSIFICATION, TaskKind.REGRESSION])
def test_a_bag_predicts_its_members_mean(task):
    data = classification_data()
    n_outputs = 3 if task is TaskKind.CLASSIFICATION else 1
    io = dataclasses.replace(model_io(data, Constraints()), task=task, n_outputs=n_outputs)
    arch = ArchConfig("gru", {"d_model": 8})
    torch.manual_seed(0)
    members = [build_model(arch, io).eval() for _ in range(3)]
    x = torch.randn(5, 6, 1)
    outputs = torch.stack([m(x) for m in members])
    bagged = Bag(members).eval()(x)
    if task is TaskKind.CLASSIFICATION:  # the log of the mean probability
        torch.testing.assert_close(bagged.exp(), outputs.softmax(-1).mean(0))
    else:
        torch.testing.assert_close(bagged, outputs.mean(0))
    rebuilt = build_bag(arch, io, 3)
    rebuilt.load_state_dict(Bag(members).state_dict())
    torch.testing.assert_close(rebuilt.eval()(x), bagged)


def test_bag_score_scores_the_members_together(tiny_data):
    folds = cross_validation_folds(tiny_data, 3, seed=0)
    spec = TrialSpec(ArchConfig("gru", {"d_model": 8}), TrainConfig(max_steps=6, eval_every=3))
    states = [fold_fit(spec, fold).state for fold in folds]
    io = model_io(tiny_data, spec.constraints)
    bag = build_bag(spec.arch, io, len(states))
    for member, state in zip(bag.members, states, strict=True):
        member.load_state_dict(state)
    expected = evaluate(bag, tiny_data.test, tiny_data.task, torch.device("cpu"))
    assert bag_score(spec.arch, io, states, tiny_data.test) == pytest.approx(expected)
