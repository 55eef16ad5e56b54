from datetime import datetime

from archsearch.recommend import apply_rules, facts_for, load_rules, recommend
from archsearch.store import TrialRecord
from archsearch.types import Metric

MSE = Metric("mse", "minimize")
FAMILIES = ["gru", "lstm", "transformer"]


def trial(number: int, family: str, score: float | None, status: str = "completed"):
    return TrialRecord(id=number + 1, number=number, family=family, config={"family": family},
                       status=status, error=None, params=10, flops=10, latency_ms=1.0,
                       latency_p95_ms=1.0, peak_memory_mb=1.0, memory_method="m", device="cpu",
                       val_score=score, test_score=score, best_epoch=1, epochs_run=1,
                       train_seconds=1.0, started_at=datetime(2026, 1, 1), finished_at=None)


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
