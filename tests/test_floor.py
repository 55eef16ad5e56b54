"""The measured floor: MiniRocket+ridge fitted on the search's split, scored as trials are,
cross-validated on the finalists' folds, judged against the pick, exported and reloaded."""

import ast
import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from archsearch.data import LoadOptions, PreparedData, Split, load_dataset, prepare
from archsearch.floor import (
    export_floor,
    fit_floor,
    fit_floor_model,
    floor_cv,
    floor_summary,
    judge,
    score,
    sentence,
)
from archsearch.floor.fit import bag_predict
from archsearch.trial.crossval import cross_validation_folds
from archsearch.trial.runner import evaluate
from archsearch.types import FloorResult, Metric, TaskKind
from archsearch.workflow import summary
from tests.records import task_record, trial_record

ACCURACY = Metric("accuracy", "maximize")
MSE = Metric("mse", "minimize")


@pytest.fixture(scope="module")
def italy() -> PreparedData:
    """UCR ItalyPowerDemand (shipped by aeon): 67 training series of 24 steps, 2 classes."""
    return prepare(load_dataset("builtin:italypowerdemand"), seed=0)


@pytest.fixture(scope="module")
def italy_floor(italy):
    return fit_floor_model(italy, seed=0)


def test_classification_floor_beats_chance_and_is_measured(italy, italy_floor):
    model, floor = italy_floor
    assert floor.method == "minirocket+ridge" and floor.train_series == len(italy.train)
    assert floor.val_score > 0.8 and floor.test_score > 0.85  # chance: 0.5
    assert 0 < floor.fit_seconds < 60 and 0 < floor.latency_ms < 1000
    assert 0 < floor.size_mb < 10
    assert floor.cv_mean is None  # only when asked
    assert model.predict(italy.test.X[:3]).shape == (3,)


def test_regression_floor_beats_predicting_the_mean():
    data = prepare(load_dataset("builtin:adding?length=20&n=300"), seed=0)
    floor = fit_floor(data, seed=0)
    baseline = float(np.mean((data.val.y - data.train.y.mean()) ** 2))
    assert floor.val_score < 0.5 * baseline and math.isfinite(floor.test_score)


def _sine_forecast() -> PreparedData:
    t = np.arange(400)
    frame = pd.DataFrame({"t": t, "a": np.sin(2 * np.pi * t / 25),
                          "b": np.cos(2 * np.pi * t / 40) + 0.01 * t})
    options = LoadOptions(task=TaskKind.FORECAST, time_column="t", lookback=30, horizon=3)
    from archsearch.data.tabular import forecast_from_frame

    return prepare(forecast_from_frame(frame, "sine", options), seed=0)


def test_forecast_floor_is_a_linear_autoregression_that_follows_a_trend():
    data = _sine_forecast()
    assert data.n_outputs == 6  # horizon 3 x 2 channels
    model, floor = fit_floor_model(data, seed=0)
    assert floor.method == "lags+ridge"
    assert model.predict(data.test.X).shape == (len(data.test), 6)
    # Standardised targets (predicting the training mean scores about 1), and the trend of
    # channel b leaves the training range: a level-blind model would score far above 1.
    assert floor.val_score < 0.01 and floor.test_score < 0.01


def test_short_series_are_padded_and_large_splits_subsampled():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 30)
    X = (rng.normal(size=(60, 5, 1)) + y[:, None, None] * 2).astype(np.float32)
    split = Split(X, y, np.full(60, 5))
    data = PreparedData("short", TaskKind.CLASSIFICATION, split, split, split, 1, 2, 5)
    model, floor = fit_floor_model(data, seed=0, n_kernels=84, max_series=40)
    assert model.length_ == 9  # MiniRocket's kernels need 9 steps: zero-padded
    assert floor.train_series == 40 and floor.val_score > 0.9


class _Fixed(nn.Module):
    """A 'model' whose outputs are the first channels of the first step: known predictions."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return x[:, 0, :self.n]


@pytest.mark.parametrize("task", [TaskKind.CLASSIFICATION, TaskKind.REGRESSION,
                                  TaskKind.FORECAST])
def test_score_is_the_trials_metric(task):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(37, 4, 3)).astype(np.float32)
    y = {TaskKind.CLASSIFICATION: rng.integers(0, 3, 37),
         TaskKind.REGRESSION: rng.normal(size=37).astype(np.float32),
         TaskKind.FORECAST: rng.normal(size=(37, 3)).astype(np.float32)}[task]
    split = Split(X, y, np.full(37, 4))
    n = 1 if task is TaskKind.REGRESSION else 3
    expected = evaluate(_Fixed(n), split, task, torch.device("cpu"), batch_size=8)
    outputs = X[:, 0, :n]
    predictions = outputs.argmax(-1) if task is TaskKind.CLASSIFICATION else outputs
    assert score(predictions, split, task) == pytest.approx(expected, rel=1e-5)
    assert score(predictions[:0], Split(X[:0], y[:0], np.zeros(0)), task) is None


def test_cross_validation_on_the_finalists_folds_is_seeded(italy):
    folds = cross_validation_folds(italy, 5, seed=0)
    mean, std, bag_test = floor_cv(folds, seed=0, test=italy.test)
    assert 0.8 < mean <= 1.0 and 0.0 <= std < 0.2
    assert 0.8 < bag_test <= 1.0  # the fold models' majority vote on test
    assert floor_cv(folds, seed=0, test=italy.test) == (mean, std, bag_test)
    assert floor_cv(folds, seed=0)[2] is None


def test_a_floor_bag_votes_for_classes_and_averages_values():
    votes = [np.array([0, 1, 2]), np.array([1, 1, 0]), np.array([1, 2, 2])]
    assert bag_predict(votes, TaskKind.CLASSIFICATION).tolist() == [1, 1, 2]
    assert bag_predict([np.array([1.0]), np.array([3.0])], TaskKind.REGRESSION).tolist() == [2.0]


# -- the decision: selection scores only, ties to the floor ---------------------------------

FLOOR = FloorResult("minirocket+ridge", 0.90, 0.99, 0.6, 1.2, 0.3, 40)


def test_searched_model_must_beat_the_floor_on_validation():
    better = trial_record(number=4, family="fcn", val_score=0.95, test_score=0.5)
    worse = trial_record(number=4, family="fcn", val_score=0.85, test_score=1.0)
    tie = trial_record(number=4, family="fcn", val_score=0.90)
    assert judge(FLOOR, better, ACCURACY).answer == "searched"  # test scores never decide
    assert judge(FLOOR, worse, ACCURACY).answer == "floor"
    assert judge(FLOOR, tie, ACCURACY).floor_wins  # a tie goes to the floor
    assert judge(FLOOR, None, ACCURACY).floor_wins  # no searched model completed
    nan = trial_record(val_score=float("nan"))
    assert judge(FLOOR, nan, ACCURACY).floor_wins
    text = sentence(FLOOR, worse, ACCURACY, judge(FLOOR, worse, ACCURACY))
    assert text.startswith("No searched model beat the floor: MiniRocket+ridge scored 0.9 "
                           "accuracy on validation vs 0.85 for the best searched model (fcn, "
                           "trial 4); the floor model is the answer")


def test_cross_validated_pick_meets_the_cross_validated_floor():
    floor = dataclasses.replace(FLOOR, cv_mean=0.97, cv_std=0.02, cv_folds=5)
    pick = trial_record(number=2, family="gru", val_score=0.99, cv_score=0.93, cv_folds=5)
    verdict = judge(floor, pick, ACCURACY)
    assert verdict.floor_wins and verdict.compared_on == "cross-validation"
    assert (verdict.searched_score, verdict.floor_score) == (0.93, 0.97)
    assert "scored 0.97 accuracy cross-validated vs 0.93" in sentence(floor, pick, ACCURACY,
                                                                       verdict)
    # A pick that was not cross-validated compares on validation, split against split.
    single = trial_record(number=2, family="gru", val_score=0.95)
    assert judge(floor, single, ACCURACY) == judge(FLOOR, single, ACCURACY)
    assert judge(floor, single, ACCURACY).compared_on == "validation"
    # A floor whose cross-validation failed: the cross-validated pick falls back to validation.
    assert judge(FLOOR, pick, ACCURACY).compared_on == "validation"


def test_lower_is_better_for_mse_and_the_summary_says_which_is_the_answer():
    floor = FloorResult("minirocket+ridge", 0.02, 0.03, 0.1, 1.0, 0.3, 180)
    pick = trial_record(id=7, number=3, val_score=0.01, test_score=0.05)
    verdict = judge(floor, pick, MSE)
    assert not verdict.floor_wins
    assert sentence(floor, pick, MSE, verdict).startswith(
        "The best searched model (gru, trial 3) beat the floor: 0.01 mse on validation vs 0.02")
    task = task_record(best_trial_id=7, floor=floor)
    out = summary(task, [pick], None, None)
    assert out["answer"] == "searched" and out["best"]["trial_id"] == 3
    assert out["best"]["bag"] is None  # not cross-validated: a single model
    assert out["floor"] == {"method": "minirocket+ridge", "val": 0.02, "test": 0.03,
                            "seconds": 0.1, "cv_mean": None, "cv_std": None, "cv_folds": None,
                            "bag_test": None, "latency_ms": 1.0, "size_mb": 0.3,
                            "train_series": 180,
                            "beats_best": False, "compared_on": "validation"}
    losing = dataclasses.replace(pick, val_score=0.5)
    out = summary(task, [losing], None, None)
    assert out["answer"] == "floor" and out["floor"]["beats_best"]
    assert out["best"]["family"] == "gru"  # best stays the best searched model
    bare = summary(task_record(best_trial_id=7), [pick], None, None)
    assert bare["floor"] is None and bare["answer"] == "searched"
    assert floor_summary(None, pick, MSE) is None


# -- export ------------------------------------------------------------------------------------

def test_export_reloads_without_archsearch_and_predicts_the_same(tmp_path, italy, italy_floor):
    model, floor = italy_floor
    files = export_floor(model, floor, tmp_path / "model", {"metric": ACCURACY.__dict__})
    assert sorted(Path(p).name for p in files.values()) == [
        "floor_config.json", "floor_model.joblib", "load_floor.py"]
    config = json.loads((tmp_path / "model" / "floor_config.json").read_text())
    assert config["input"]["length"] == 24 and config["floor"]["test_score"] == floor.test_score
    np.save(tmp_path / "x.npy", italy.test.X[:20])
    script = ("import sys\nsys.modules['archsearch'] = None  # it must load without archsearch\n"
              + (tmp_path / "model" / "load_floor.py").read_text()
              + "\nprint(json.dumps(predict(np.load('../x.npy')).tolist()))")
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path / "model",
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    reloaded = json.loads(run.stdout.strip().splitlines()[-1])
    assert reloaded == model.predict(italy.test.X[:20]).tolist()


# -- where the room sits -------------------------------------------------------------------

def _archsearch_imports(source: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return {n for n in names if n.split(".")[0] in ("archsearch", "ray", "optuna")}


def test_the_floor_room_sits_between_data_and_the_top():
    package = Path(__file__).resolve().parents[1] / "archsearch"
    allowed = ("archsearch.data", "archsearch.measure", "archsearch.types", "archsearch.floor",
               "archsearch.blocks.readout")  # the ridge readout it shares with rocket
    for source in (package / "floor").glob("*.py"):
        for name in _archsearch_imports(source):
            assert name.startswith(allowed), (source, name)
    for source in package.rglob("*.py"):
        if any(n.startswith("archsearch.floor") for n in _archsearch_imports(source)):
            assert (source.parent.name in ("floor", "report", "api")
                    or source.name == "workflow.py"), source


# -- the workflow's step after the search ------------------------------------------------------

def test_workflow_cross_validates_the_floor_and_exports_it_when_it_wins(tmp_path, italy,
                                                                         italy_floor):
    from archsearch.recommend import Recommendation
    from archsearch.store import Store
    from archsearch.workflow import SearchRequest, _judge_floor

    store = Store(f"sqlite:///{tmp_path / 'w.db'}")
    task_id = store.create_task(
        source="builtin:italypowerdemand", dataset_name="ItalyPowerDemand",
        task_kind="classification", metric=ACCURACY, seed=0, constraints={}, options={},
        space_name="default", meta_features={}, fingerprint=None, budget_trials=1,
        budget_minutes=None)
    store.save_floor(task_id, italy_floor[1])
    # A cross-validated pick at chance: the floor, cross-validated on the same folds, wins.
    pick = trial_record(id=1, number=0, family="fcn", val_score=0.6, cv_score=0.5, cv_folds=5)
    rec = Recommendation("fcn", {}, 0.5, ["fcn reached the best validation accuracy"])
    lines: list[str] = []
    files = _judge_floor(store, task_id, italy, SearchRequest("builtin:italypowerdemand"),
                         [pick], pick, rec, None, tmp_path / "model", lines.append)
    floor = store.get_task(task_id).floor
    assert floor.cv_folds == 5 and floor.cv_mean > 0.8
    assert rec.rationale[0].startswith("No searched model beat the floor: MiniRocket+ridge "
                                       f"scored {floor.cv_mean:.4g} accuracy cross-validated "
                                       "vs 0.5 for the best searched model (fcn, trial 0)")
    assert sorted(files) == ["floor_config", "floor_model", "load_floor"]
    assert (tmp_path / "model" / "floor_model.joblib").is_file()  # refitted: no model in hand
    # A pick that beats it: the margin closes the rationale, and nothing is exported.
    winner = dataclasses.replace(pick, val_score=1.0, cv_score=1.0)
    rec = Recommendation("fcn", {}, 0.5, ["first"])
    assert _judge_floor(store, task_id, italy, SearchRequest("builtin:italypowerdemand"),
                        [winner], winner, rec, italy_floor[0], tmp_path / "m2",
                        lines.append) == {}
    assert rec.rationale[0] == "first" and "beat the floor" in rec.rationale[1]
    store.close()
