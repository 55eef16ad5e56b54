"""The data half of the recommender: the past-task ranker and the instant answer."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import cross_val_score

from archsearch.recommend import (
    FamilyScoreRegressor,
    facts_for,
    meta_vector,
    past_evidence,
    recommend,
)
from archsearch.recommend.ranker import normalised_scores
from archsearch.space import load_space
from archsearch.store import Store
from archsearch.types import CostMeasurement, Metric, TaskStatus, TrialOutcome, TrialStatus

FAMILIES = ["gru", "lstm", "transformer"]
MSE = Metric("mse", "minimize")


def tasks_by_length(lengths, winner_of):
    """Meta-feature rows and normalised scores: ``winner_of(seq_len)`` scores 1, others 0."""
    X = np.stack([meta_vector({"seq_len": n, "n_sequences": 1000, "n_features": 2},
                              "regression") for n in lengths])
    Y = np.array([[1.0 if f == winner_of(n) else 0.0 for f in FAMILIES] for n in lengths])
    return X, Y


def short_gru_long_transformer(n: int) -> str:
    return "gru" if n < 512 else "transformer"


def test_ranker_follows_scikit_learn_conventions():
    model = FamilyScoreRegressor(n_neighbors=2, weights="uniform")
    assert model.get_params() == {"n_neighbors": 2, "weights": "uniform"}
    assert clone(model).get_params() == model.get_params()
    X, Y = tasks_by_length([20, 40, 60, 2000, 3000, 4000], short_gru_long_transformer)
    assert model.fit(X, Y) is model and model.n_outputs_ == 3
    assert model.predict(X).shape == (6, 3)
    with pytest.raises(ValueError, match="not fitted"):
        FamilyScoreRegressor().predict(X)
    # Like any scikit-learn estimator, it can be cross-validated (its score is masked R^2).
    scores = cross_val_score(FamilyScoreRegressor(n_neighbors=1), X, Y,
                             cv=[([0, 2, 3, 5], [1, 4])])
    assert scores[0] == pytest.approx(1.0)


@pytest.mark.parametrize("weights", ["distance", "uniform"])
def test_ranker_predicts_what_scikit_learns_nearest_neighbours_predict(weights):
    # The ranker does its own neighbour averaging (scikit-learn's import would cost
    # `archsearch recommend` seconds); it must agree with KNeighborsRegressor per family.
    from sklearn.neighbors import KNeighborsRegressor

    from archsearch.recommend.similarity import pairwise_distances

    rng = np.random.default_rng(0)
    X = np.stack([meta_vector({"seq_len": int(n), "n_sequences": int(m), "n_features": 2},
                              "classification")
                  for n, m in zip(rng.integers(10, 5000, 12), rng.integers(50, 9000, 12),
                                  strict=True)])
    Y = rng.random((12, 3))
    Y[[1, 4, 7], 2] = np.nan  # family 2 measured on 9 tasks only
    queries = np.vstack([X[:2], meta_vector({"seq_len": 300, "n_sequences": 500,
                                             "n_features": 2}, "classification")[None]])
    predicted = FamilyScoreRegressor(n_neighbors=4, weights=weights).fit(X, Y).predict(queries)
    for j in range(3):
        rows = np.flatnonzero(~np.isnan(Y[:, j]))
        reference = KNeighborsRegressor(n_neighbors=4, weights=weights, metric="precomputed")
        reference.fit(pairwise_distances(X[rows], X[rows]), Y[rows, j])
        expected = reference.predict(pairwise_distances(queries, X[rows]))
        assert predicted[:, j] == pytest.approx(expected)  # the first two queries: exact hits
    with pytest.raises(ValueError, match="weights must be one of"):
        FamilyScoreRegressor(weights="gaussian").fit(X, Y)


def test_ranker_learns_which_family_wins_on_similar_tasks():
    X, Y = tasks_by_length([20, 40, 60, 100, 2000, 3000, 4000, 8000],
                           short_gru_long_transformer)
    Y[0, 1] = np.nan  # a task that did not measure lstm
    model = FamilyScoreRegressor(n_neighbors=3).fit(X, Y)
    short, long = model.predict(np.stack([X[1], meta_vector(
        {"seq_len": 5000, "n_sequences": 1000, "n_features": 2}, "regression")]))
    gru, transformer = FAMILIES.index("gru"), FAMILIES.index("transformer")
    assert short[gru] > short[transformer] and long[transformer] > long[gru]
    assert model.support_.tolist() == [8, 7, 8]


def add_search(store: Store, seq_len: int, scores: dict[str, float]) -> int:
    """A completed past search: one completed trial per family with the given mse."""
    meta = {"seq_len": seq_len, "n_sequences": 1000, "n_features": 2}
    task_id = store.create_task(
        source=f"builtin:adding?length={seq_len}", dataset_name=f"adding-{seq_len}",
        task_kind="regression", metric=MSE, seed=0, constraints={}, options={},
        space_name="default", meta_features=meta, fingerprint=f"f{seq_len}", budget_trials=3,
        budget_minutes=None)
    cost = CostMeasurement(1000, 10000, 1.0, 1.2, 1.0, "m", "cpu", 1)
    for number, (family, score) in enumerate(sorted(scores.items())):
        store.start_trial(task_id, number, family, {"family": family, "model": {"d_model": 16}})
        store.finish_trial(task_id, number, TrialOutcome(TrialStatus.COMPLETED, cost, 2, 2,
                                                         score, score, 1.0))
    store.update_task(task_id, status=TaskStatus.COMPLETED)
    return task_id


def test_past_tasks_in_the_database_override_the_rules(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'past.db'}")
    # On every past short-sequence task the Transformer won, against the rules' preference.
    for seq_len in (30, 50, 80, 120):
        add_search(store, seq_len, {"gru": 0.5, "lstm": 0.4, "transformer": 0.1})
    meta = {"seq_len": 60, "n_sequences": 1000, "n_features": 2}
    facts = facts_for(meta, "regression", {})
    rules_only = recommend(facts, FAMILIES, MSE, [])
    past = past_evidence(store.past_results(), meta, "regression", FAMILIES)
    with_data = recommend(facts, FAMILIES, MSE, [], past=past)
    store.close()
    assert rules_only.family in ("gru", "lstm")
    assert past.available and past.n_tasks == 4 and past.scores["transformer"] == 1.0
    assert with_data.family == "transformer"
    assert any("Past data overrode the rules" in s for s in with_data.rationale)
    # Held out one at a time, each past task was predicted right by the other three.
    assert with_data.trust.n_tasks == 4 and with_data.trust.factor > 0
    assert with_data.trust.regret[0.0] > with_data.trust.regret[with_data.trust.factor]
    assert any(s.startswith("Trust in past data: weight") for s in with_data.rationale)
    assert with_data.config == {"family": "transformer", "model": {"d_model": 16}}


def test_past_data_that_misled_on_held_out_tasks_is_not_trusted(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'past.db'}")
    # Neighbouring lengths disagree: every past task's nearest neighbour names the wrong winner.
    for seq_len, winner in ((30, "transformer"), (31, "gru"), (90, "transformer"),
                            (92, "gru"), (250, "transformer"), (255, "gru")):
        add_search(store, seq_len, {f: 0.1 if f == winner else 0.5 for f in FAMILIES})
    meta = {"seq_len": 32, "n_sequences": 1000, "n_features": 2}
    past = past_evidence(store.past_results(), meta, "regression", FAMILIES)
    store.close()
    rec = recommend(facts_for(meta, "regression", {}), FAMILIES, MSE, [], past=past)
    assert rec.trust.n_tasks == 6 and rec.trust.factor == 0.0
    assert rec.trust.regret[16.0] > rec.trust.regret[0.0]
    assert rec.family == "gru"  # the rules' pick: the data could not beat them


def test_recommend_cli_answers_without_training(tmp_path):
    db = tmp_path / "none.db"
    run = subprocess.run([sys.executable, "-m", "archsearch", "recommend", "builtin:adding",
                          "--json", "--db", f"sqlite:///{db}"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert answer["family"] in load_space().families
    assert answer["rationale"] and answer["past_tasks"] == 0
    assert any("short-sequences-prefer-rnn" in s for s in answer["rationale"])
    assert not db.exists()  # an instant answer writes nothing


def test_recommender_benchmark_scores_leave_one_task_out_regret(tmp_path):
    from benchmarks.recommender import evaluate

    store = Store(f"sqlite:///{tmp_path / 'bench.db'}")
    for seq_len in (30, 50, 80):
        add_search(store, seq_len, {"gru": 0.5, "lstm": 0.4, "transformer": 0.1})
    add_search(store, 40, {"gru": 0.5, "transformer": 0.1})  # lstm unmeasured: not scored
    rows = evaluate(store, FAMILIES)
    store.close()
    assert [r["task"] for r in rows] == ["adding-30", "adding-50", "adding-80"]
    for row in rows:
        # The rules pick a recurrent family, the worst here (regret 1); the ranker, fitted on
        # the other tasks only, knows better (regret 0).
        assert row["rules_only"] in ("gru", "lstm") and row["rules_data"] == "transformer"
        assert row["regret_rules_data"] == 0.0
        lstm = 1 - math.log(0.5 / 0.4) / math.log(0.5 / 0.1)  # errors count on a log scale
        assert row["regret_rules_only"] == pytest.approx(
            1.0 if row["rules_only"] == "gru" else lstm, abs=1e-4)
        assert row["regret_random"] == pytest.approx((1.0 + lstm + 0.0) / 3, abs=1e-4)


def test_past_tasks_too_far_from_a_task_say_nothing_about_it(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'past.db'}") as store:
        for seq_len in (30, 50, 80, 120):
            add_search(store, seq_len, {"gru": 0.5, "lstm": 0.4, "transformer": 0.1})
        # Tens of steps against 20,000: far beyond MAX_NEIGHBOUR_DISTANCE in length alone.
        meta = {"seq_len": 20_000, "n_sequences": 1000, "n_features": 2}
        past = past_evidence(store.past_results(), meta, "regression", FAMILIES)
    assert not past.available and past.n_tasks == 4 and past.nearest > 1.5
    rec = recommend(facts_for(meta, "regression", {}), FAMILIES, MSE, [], past=past)
    assert any("none is similar enough to predict from" in s for s in rec.rationale)


def test_errors_are_normalised_on_a_log_scale_and_accuracies_linearly():
    # one diverged family does not squeeze the others against the best (adding problem's MSEs)
    mse = normalised_scores({"transformer": 0.0003, "lite": 0.0057, "ssm": 0.125}, False)
    assert mse["transformer"] == 1.0 and mse["ssm"] == 0.0
    assert mse["lite"] == pytest.approx(math.log(0.125 / 0.0057) / math.log(0.125 / 0.0003))
    assert normalised_scores({"a": 0.9, "b": 0.8, "c": 0.5}, True)["b"] == pytest.approx(0.75)
    assert normalised_scores({"a": 0.0, "b": 0.1}, False) == {"a": 1.0, "b": 0.0}  # 0 is finite
