from archsearch.recommend import apply_rules, facts_for, load_rules, recommend
from archsearch.types import Metric
from tests.records import task_record, trial_record

MSE = Metric("mse", "minimize")
FAMILIES = ["gru", "lstm", "transformer"]


def trial(number: int, family: str, score: float | None, status: str = "completed"):
    return trial_record(id=number + 1, number=number, family=family,
                        config={"family": family}, status=status, val_score=score,
                        test_score=score)


def test_rules_file_loads_and_length_rules_fire():
    rules = load_rules()
    assert len({r.id for r in rules}) == len(rules)
    short = apply_rules(rules, {"seq_len": 100}, FAMILIES)
    assert [r.id for r in short.fired] == ["short-sequences-prefer-rnn"]
    assert short.weights["lstm"] > short.weights["transformer"]
    long = apply_rules(rules, {"seq_len": 2048}, FAMILIES)
    assert long.weights["transformer"] > long.weights["lstm"]


def test_streaming_excludes_encoder_first_hybrids():
    priors = apply_rules(load_rules(), facts_for({"seq_len": 50}, "regression",
                                                 {"streaming": True}), ["gru", "rnn_then_tf"])
    assert priors.excluded == {"rnn_then_tf": "streaming-needs-a-step-path"}


CONV = ["fcn", "resnet", "inception", "lite", "rocket"]


def test_classification_of_short_series_favours_the_convolutional_baselines():
    families = ["gru", "lstm", "transformer", *CONV]
    priors = apply_rules(load_rules(), facts_for({"seq_len": 150}, "classification", {}),
                         families)
    assert "classification-prefers-convolutions" in [r.id for r in priors.fired]
    assert min(priors.weights[f] for f in ("resnet", "inception", "rocket")) > max(
        priors.weights[f] for f in ("gru", "lstm", "transformer"))
    rec = recommend(facts_for({"seq_len": 150}, "classification", {}), families,
                    Metric("accuracy", "maximize"), [])
    assert rec.family in ("resnet", "inception", "rocket")
    for kind, seq_len in (("regression", 150), ("classification", 4096)):
        fired = apply_rules(load_rules(), facts_for({"seq_len": seq_len}, kind, {}), families)
        assert "classification-prefers-convolutions" not in [r.id for r in fired.fired]


def test_a_tight_parameter_budget_favours_lite():
    facts = facts_for({"seq_len": 150}, "classification", {"max_params": 30000})
    priors = apply_rules(load_rules(), facts, CONV)
    assert "parameter-budget-prefers-lite" in [r.id for r in priors.fired]
    assert priors.weights["lite"] == max(priors.weights.values())


def test_the_convolutional_families_stream_so_streaming_keeps_them():
    priors = apply_rules(load_rules(), facts_for({"seq_len": 150}, "classification",
                                                 {"streaming": True}), CONV)
    assert priors.excluded == {}


def test_without_trials_the_rules_decide():
    rec = recommend({"seq_len": 2048}, FAMILIES, MSE, [])
    assert rec.family == "transformer" and rec.trial_number is None
    assert any("No trial has been measured" in s for s in rec.rationale)


def test_measurement_overrides_the_rules_and_says_so():
    trials = [trial(0, "lstm", 0.5), trial(1, "transformer", 0.1), trial(2, "gru", 0.6),
              trial(3, "lstm", None, "pruned")]
    rec = recommend({"seq_len": 100}, FAMILIES, MSE, trials)
    assert rec.family == "transformer" and rec.trial_number == 1
    assert any("measurement overrode them" in s for s in rec.rationale)
    assert any("Runner-up: lstm" in s for s in rec.rationale)
    assert 0 < rec.confidence <= 1


def test_prior_breaks_a_near_tie():
    trials = [trial(0, "lstm", 0.3000), trial(1, "transformer", 0.2999), trial(2, "gru", 0.9)]
    assert recommend({"seq_len": 100}, FAMILIES, MSE, trials).family == "lstm"


def held_out_task(number: int, truth: dict[str, float], predicted: dict[str, float]):
    from archsearch.recommend.ranker import HeldOutTask

    task = task_record(id=number, dataset_name=f"d{number}", meta_features={"seq_len": 50},
                       budget_trials=3)
    return HeldOutTask(task, predicted, dict.fromkeys(predicted, 0.6), truth)


def test_trust_in_past_data_needs_more_than_one_lucky_task():
    from archsearch.recommend.combine import calibrate_trust

    # The rules pick gru (short sequences); past data always names transformer. Trusting it
    # gains 1 on one held-out task, nothing on four, and loses 0.5 on one: the lowest mean
    # regret, but a mean gain (0.08) well inside one standard error (0.20).
    predicted = {"gru": 0.0, "lstm": 0.5, "transformer": 1.0}
    right = held_out_task(1, {"gru": 0.0, "lstm": 0.5, "transformer": 1.0}, predicted)
    level = [held_out_task(n, {"gru": 1.0, "lstm": 0.0, "transformer": 1.0}, predicted)
             for n in range(2, 6)]
    wrong = held_out_task(6, {"gru": 1.0, "lstm": 0.0, "transformer": 0.5}, predicted)
    lucky = calibrate_trust([right, *level, wrong], load_rules(), FAMILIES)
    assert lucky.n_tasks == 6 and lucky.regret[16.0] < lucky.regret[0.0]
    assert lucky.factor == 0.0
    steady = calibrate_trust([right, right, right, *level], load_rules(), FAMILIES)
    assert steady.factor > 0.0 and steady.regret[steady.factor] < steady.regret[0.0]
