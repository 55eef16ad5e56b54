"""The HTML report: escaped, self-contained, and really rendered by headless Chromium."""

from archsearch.recommend import facts_for, recommend
from archsearch.report import ReportInputs, render_report
from archsearch.store import RecommendationRecord, Store
from archsearch.types import (
    CostMeasurement,
    EpochReport,
    Metric,
    TaskStatus,
    TrialOutcome,
    TrialStatus,
)
from tests.browser import distinct_colours, screenshot

EVIL = '<script>alert("x")</script>'


def populated_store(tmp_path) -> tuple[Store, int]:
    store = Store(f"sqlite:///{tmp_path / 'r.db'}")
    task_id = store.create_task(
        source=f"data/{EVIL}.npz", dataset_name=f"sales {EVIL}", task_kind="regression",
        metric=Metric("mse", "minimize"), seed=0, constraints={"max_params": 50000},
        options={}, space_name="default", meta_features={"seq_len": 64, f"col {EVIL}": 1},
        fingerprint="f" * 64, budget_trials=4, budget_minutes=None)
    for number, (family, params, score) in enumerate(
            [("lstm", 9000, 0.2), ("gru", 7000, 0.1), ("transformer", 30000, 0.3)]):
        cost = CostMeasurement(params, 10 * params, 0.1 * (number + 1), 0.2, 1.0, "m", "cpu", 1)
        store.start_trial(task_id, number, family,
                          {"family": family, "model": {"d_model": 16, "note": EVIL},
                           "train": {"max_epochs": 3}})
        store.record_cost(task_id, number, cost)
        for epoch in range(1, 4):
            store.record_epoch(task_id, number, EpochReport(epoch, 1.0, score * (4 - epoch),
                                                            0.5 * epoch))
        store.finish_trial(task_id, number, TrialOutcome(TrialStatus.COMPLETED, cost, 3, 3,
                                                         score, score, 1.5))
    store.start_trial(task_id, 3, "lstm", {"family": "lstm", "model": {},
                                           "train": {"max_epochs": 3}})
    store.finish_trial(task_id, 3, TrialOutcome(TrialStatus.FAILED, None, 0, None, None, None,
                                                0.0, f"boom {EVIL}"))
    trials = store.trials(task_id)
    rec = recommend(facts_for({"seq_len": 64}, "regression", {}), ["gru", "lstm", "transformer"],
                    Metric("mse", "minimize"), trials)
    store.save_recommendation(task_id, RecommendationRecord(
        rec.family, rec.config, rec.confidence, rec.rationale,
        [r.to_dict() for r in rec.ranking]))
    best = next(t for t in trials if t.number == rec.trial_number)
    store.update_task(task_id, status=TaskStatus.COMPLETED, best_trial_id=best.id)
    return store, task_id


def render(tmp_path):
    store, task_id = populated_store(tmp_path)
    out = render_report(ReportInputs(store.get_task(task_id), store.trials(task_id),
                                     store.latest_recommendation(task_id), {}),
                        tmp_path / "report.html")
    store.close()
    return out


def test_report_escapes_user_supplied_names(tmp_path):
    html = render(tmp_path).read_text()
    assert EVIL not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "Use gru" in html
    assert html.count("<script>") == 1  # only the report's own table-sorting script


def test_report_is_self_contained(tmp_path):
    html = render(tmp_path).read_text()
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html and "<link" not in html


def test_report_renders_in_headless_chromium(tmp_path):
    report = render(tmp_path)
    shot = tmp_path / "shot.png"
    console = screenshot(report.as_uri(), shot)
    assert console == [], console  # no console errors (nor any other message)
    assert distinct_colours(shot) >= 16  # not a blank page: text, tables and chart colours
