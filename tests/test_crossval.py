import numpy as np

from archsearch.data import PreparedData, Split
from archsearch.trial import TrialSpec
from archsearch.trial.crossval import cross_validation_folds, fold_score, summarise
from archsearch.types import ArchConfig, TaskKind, TrainConfig


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


def test_fold_score_trains_a_real_model(tiny_data):
    fold = cross_validation_folds(tiny_data, 3, seed=0)[0]
    spec = TrialSpec(ArchConfig("gru", {"d_model": 8}), TrainConfig(max_steps=4, eval_every=2))
    score = fold_score(spec, fold)
    assert score is not None and score > 0
    assert summarise([1.0, 3.0]) == (2.0, 1.0)
    assert summarise([1.0, None]) is None
