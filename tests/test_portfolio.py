"""The zero-shot portfolio of the initial design and the calibration of the instant pick's
confidence: small hand-made matrices, no training, no Ray."""

import json

import numpy as np
import pytest

from archsearch.recommend import PastTask, facts_for, greedy_portfolio, recommend
from archsearch.recommend.calibration import (
    ConfidenceCalibrator,
    expected_calibration_error,
    reliability_table,
)
from archsearch.recommend.portfolio import MIN_GAIN, zero_shot_portfolio
from archsearch.recommend.rationale import initial_design_sentence
from archsearch.types import Metric

ACCURACY = Metric("accuracy", "maximize")
FAMILIES = ["gru", "lstm", "tcn", "transformer"]


def test_the_greedy_portfolio_adds_what_most_lowers_the_regret_of_the_best_chosen_so_far():
    # b alone has the lowest mean regret (a hedge); after it, a and c each halve what is left
    # (a tie the prior breaks), and the other then brings it to zero.
    regret = [[0.0, 0.3, 1.0],
              [1.0, 0.3, 0.0]]
    assert greedy_portfolio(regret, [1, 1], ["a", "b", "c"], {}) == (
        ["b", "a", "c"], [pytest.approx(0.3), pytest.approx(0.15), 0.0])
    assert greedy_portfolio(regret, [1, 1], ["a", "b", "c"], {"c": 2.0})[0] == ["b", "c", "a"]
    # The second task weighs more: c, its best, comes first.
    assert greedy_portfolio(regret, [1, 9], ["a", "b", "c"], {})[0][0] == "c"
    # A family measured nowhere (NaN: the worst) gains nothing and is never chosen.
    assert "d" not in greedy_portfolio(np.c_[regret, [np.nan, np.nan]], [1, 1],
                                       ["a", "b", "c", "d"], {})[0]


def test_the_greedy_portfolio_stops_when_a_family_gains_too_little():
    regret = [[0.0, 1.0], [MIN_GAIN, 0.0]]  # after a, b lowers the mean by MIN_GAIN / 2
    assert greedy_portfolio(regret, [1, 1], ["a", "b"], {})[0] == ["a"]


def task(name, seq_len, scores, **constraints):
    return PastTask(name, None, "classification",
                    {"seq_len": seq_len, "n_sequences": 1000, "n_features": 1}, constraints,
                    ACCURACY, scores)


def instant_ranking(seq_len, **constraints):
    meta = {"seq_len": seq_len, "n_sequences": 1000, "n_features": 1}
    facts = facts_for(meta, "classification", constraints)
    return meta, recommend(facts, FAMILIES, ACCURACY, []).ranking


def test_the_portfolio_runs_first_and_the_instant_ranking_orders_the_rest():
    past = [task("near", 20, {"gru": 0.5, "lstm": 0.5, "tcn": 0.9, "transformer": 0.6}),
            task("near-too", 24, {"gru": 0.5, "lstm": 0.5, "tcn": 0.6, "transformer": 0.9})]
    meta, ranking = instant_ranking(16)
    portfolio = zero_shot_portfolio(past, meta, "classification", ranking)
    assert portfolio.used and set(portfolio.families) == {"tcn", "transformer"}
    assert portfolio.order[:2] == portfolio.families
    rest = [r.family for r in ranking if r.family not in portfolio.families]
    assert list(portfolio.order[2:]) == rest
    sentence = initial_design_sentence(portfolio)
    assert "zero-shot portfolio of past tasks first" in sentence and "near at" in sentence


def test_a_family_a_hard_rule_excludes_never_joins_the_portfolio():
    past = [task("near", 20, {"gru": 0.5, "lstm": 0.6, "tcn": 0.7, "transformer": 0.9})]
    meta, ranking = instant_ranking(16, streaming=True)
    portfolio = zero_shot_portfolio(past, meta, "classification", ranking)
    assert "transformer" not in portfolio.families and portfolio.families[0] == "tcn"
    assert portfolio.order[-1] == "transformer"  # still measured: last, as the ranking has it


def test_without_a_near_task_the_order_is_the_instant_recommendation():
    past = [task("far", 4000, {"gru": 0.5, "lstm": 0.5, "tcn": 0.6, "transformer": 0.9}),
            task("far-too", 3000, {"gru": 0.5, "lstm": 0.5, "tcn": 0.6, "transformer": 0.9})]
    meta, ranking = instant_ranking(16)
    portfolio = zero_shot_portfolio(past, meta, "classification", ranking)
    assert not portfolio.used and list(portfolio.order) == [r.family for r in ranking]
    sentence = initial_design_sentence(portfolio)
    assert "in the order of the instant recommendation (no portfolio" in sentence
    assert "beyond 1.5" in sentence
    nothing = zero_shot_portfolio([], meta, "classification", ranking)
    assert "no past task measured" in initial_design_sentence(nothing)


def test_the_calibrator_maps_raw_confidence_to_the_observed_rate_of_right_picks():
    raw = [0.2] * 10 + [0.5] * 10
    right = [1] * 2 + [0] * 8 + [1] * 9 + [0]
    calibrator = ConfidenceCalibrator(min_tasks=10, C=1e6).fit(raw, right)
    assert calibrator.calibrated_
    assert calibrator.get_params() == {"min_tasks": 10, "C": 1e6}
    # Barely penalised, two levels: the logistic curve passes through both observed rates.
    assert calibrator.predict([0.2, 0.5]) == pytest.approx([0.2, 0.9], abs=1e-3)
    # The default penalty pulls both toward the overall rate (11 of 20) and keeps their order.
    low, high = ConfidenceCalibrator(min_tasks=10).fit(raw, right).predict([0.2, 0.5])
    assert 0.2 < low < 0.55 < high < 0.9
    # Raw confidence that tells nothing: the overall rate, whatever the raw value.
    flat = ConfidenceCalibrator(min_tasks=10).fit([0.1, 0.6] * 10, [1, 1, 0, 0, 0] * 4)
    assert flat.predict([0.0, 0.6]) == pytest.approx([0.4, 0.4], abs=0.02)
    # None right: a small rate (the rule of succession), not a certainty of 0.
    assert ConfidenceCalibrator().fit([0.3] * 13, [0] * 13).predict([0.3, 0.9]) == (
        pytest.approx([1 / 15, 1 / 15]))
    # Too few held-out tasks: the raw value is kept.
    few = ConfidenceCalibrator(min_tasks=10).fit(raw[:9], right[:9])
    assert not few.calibrated_ and few.predict([0.3]) == pytest.approx([0.3])
    with pytest.raises(ValueError, match="not fitted"):
        ConfidenceCalibrator().predict([0.3])


def test_the_calibrator_predicts_as_the_logistic_regression_and_ships_its_fit():
    # predict evaluates the fit's two coefficients itself (scikit-learn's import would cost
    # `archsearch recommend` seconds): it must agree with LogisticRegression.predict_proba.
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    raw, queries = rng.random(40), np.linspace(-0.2, 1.2, 29)
    right = (rng.random(40) < raw).astype(int)
    calibrator = ConfidenceCalibrator(C=3.0).fit(raw, right)
    expected = LogisticRegression(C=3.0).fit(raw[:, None], right)
    assert calibrator.predict(queries) == pytest.approx(
        expected.predict_proba(queries[:, None])[:, 1])
    shipped = json.loads(json.dumps(calibrator.fitted_state()))
    restored = ConfidenceCalibrator.from_fitted_state(shipped)
    assert restored.get_params() == calibrator.get_params()
    assert restored.predict(queries) == pytest.approx(calibrator.predict(queries))
    few = ConfidenceCalibrator.from_fitted_state(ConfidenceCalibrator().fit([0.3], [1])
                                                 .fitted_state())
    assert not few.calibrated_ and few.predict([0.4]) == pytest.approx([0.4])


def test_the_reliability_table_and_its_expected_calibration_error():
    table = reliability_table([0.1, 0.1, 0.5, 0.5], [False, True, True, True], bins=5)
    assert [(row["bin"], row["n"], row["stated"], row["observed"]) for row in table] == [
        ([0.0, 0.2], 2, 0.1, 0.5), ([0.4, 0.6], 2, 0.5, 1.0)]
    assert expected_calibration_error(table) == pytest.approx(0.45)
    assert expected_calibration_error([]) is None


class PastSearches:
    """The one Store query the portfolio reads: completed tasks with their best trials."""

    def __init__(self, history):
        self.history = history

    def past_results(self, exclude=()):
        return [(task, best) for task, best in self.history if task.id not in exclude]


def test_the_users_own_completed_searches_join_the_portfolio_which_leads_the_instant_pick():
    from archsearch.recommend import instant_for_task
    from archsearch.recommend.ranker import NO_PAST, PastEvidence
    from archsearch.recommend.rationale import knowledge_verdict
    from tests.records import task_record, trial_record

    meta = {"seq_len": 20, "n_sequences": 1000, "n_features": 1}
    earlier = task_record(id=1, task_kind="classification", metric=ACCURACY, meta_features=meta)
    best = {f: trial_record(family=f, val_score=0.9 if f == "tcn" else 0.5) for f in FAMILIES}
    this = task_record(id=2, task_kind="classification", metric=ACCURACY,
                       meta_features={**meta, "seq_len": 16})
    facts = facts_for(this.meta_features, "classification", {})
    prior = recommend(facts, FAMILIES, ACCURACY, [])
    assert prior.family != "tcn"  # the rules alone favour a recurrent family on 16 steps
    rec, portfolio = instant_for_task(PastSearches([(earlier, best), (this, best)]), this, facts,
                                      FAMILIES, NO_PAST)
    assert portfolio.families == ("tcn",) and portfolio.n_tasks == 1  # itself left out
    assert portfolio.fallback == tuple(r.family for r in prior.ranking)
    # The portfolio leads: tcn, then the prior's order; the raw confidence is tcn's weighted
    # share of wins on the past tasks (1: it won the only one), capped for an unmeasured pick.
    assert rec.family == "tcn" and [r.family for r in rec.ranking] == list(portfolio.order)
    assert portfolio.win_share == 1.0 and rec.confidence == 0.6
    text = " ".join(rec.rationale)
    assert "tcn leads the zero-shot portfolio of 1 past task(s)" in text
    assert f"the prior alone (rules and the ranker) favours {prior.family}" in text
    # What a search's report says of the prediction: the portfolio made it.
    assert knowledge_verdict("tcn", "gru", PastEvidence(True, 3, n_corpus=2), portfolio) == (
        "Before the search, the instant recommendation predicted tcn (the zero-shot portfolio "
        "of 1 past task(s) weighted by similarity, the knowledge base's 2 measured corpus "
        "task(s) among them); the search picked gru instead.")
    # Nothing near enough: no portfolio, and the prior's pick stands.
    far = task_record(id=3, task_kind="classification", metric=ACCURACY,
                      meta_features={**meta, "seq_len": 20000})
    rec, portfolio = instant_for_task(PastSearches([(earlier, best)]), far, facts_for(
        far.meta_features, "classification", {}), FAMILIES, NO_PAST)
    assert not portfolio.used and portfolio.win_share is None
    assert "leads the zero-shot portfolio" not in " ".join(rec.rationale)
