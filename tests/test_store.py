"""One store contract, run against SQLite and a real PostgreSQL server."""

import multiprocessing
import re
import time

import pytest

from archsearch.errors import NotFoundError
from archsearch.store import RecommendationRecord, Store
from archsearch.types import (
    CostMeasurement,
    EpochReport,
    FloorResult,
    Metric,
    TaskStatus,
    TrialOutcome,
    TrialStatus,
)

COST = CostMeasurement(params=100, flops=1000, latency_ms=0.5, latency_p95_ms=0.7,
                       peak_memory_mb=1.5, memory_method="test", device="cpu", threads=1)


def new_task(store: Store, **overrides) -> int:
    values = dict(source="builtin:adding", dataset_name="adding", task_kind="regression",
                  metric=Metric("mse", "minimize"), seed=0, constraints={"max_params": None},
                  options={}, space_name="default", meta_features={"seq_len": 10},
                  fingerprint="abc", budget_trials=3, budget_minutes=None)
    values.update(overrides)
    return store.create_task(**values)


def test_task_trial_epoch_roundtrip(db_url):
    store = Store(db_url)
    task_id = new_task(store)
    store.start_trial(task_id, 0, "lstm", {"model": {"d_model": 8}})
    store.record_cost(task_id, 0, COST)
    for epoch, score in enumerate([0.5, 0.3, 0.4], start=1):
        store.record_epoch(task_id, 0, EpochReport(epoch, 1.0, score, 0.1 * epoch))
    store.finish_trial(task_id, 0, TrialOutcome(TrialStatus.COMPLETED, COST, 3, 2, 0.3, 0.35,
                                                0.3))
    store.start_trial(task_id, 1, "gru", {})
    store.record_epoch(task_id, 1, EpochReport(1, 1.0, 0.9, 0.1))
    store.mark_trial(task_id, 1, TrialStatus.PRUNED, "pruned")
    store.update_task(task_id, status=TaskStatus.COMPLETED, best_trial_id=None)
    store.save_recommendation(task_id, RecommendationRecord("lstm", {"a": 1}, 0.7, ["why"]))

    task = store.get_task(task_id)
    assert task.status == "completed" and task.meta_features == {"seq_len": 10}
    trials = store.trials(task_id)
    assert [t.status for t in trials] == ["completed", "pruned"]
    assert [e.val_score for e in trials[0].epochs] == [0.5, 0.3, 0.4]
    assert trials[0].params == 100 and trials[0].test_score == 0.35
    assert trials[1].val_score == 0.9 and trials[1].best_epoch == 1  # best epoch, minimised
    assert store.latest_recommendation(task_id).rationale == ["why"]
    assert [t.id for t in store.list_tasks()] == [task_id]
    store.close()


def test_tasks_and_trials_are_paged_in_sql(db_url):
    from sqlalchemy import event

    store = Store(db_url)
    task_ids = [new_task(store) for _ in range(5)]
    for number in range(5):
        store.start_trial(task_ids[0], number, "gru", {})
    statements = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2].upper()))
    assert [t.id for t in store.list_tasks(2, 1)] == task_ids[1:3]
    assert [t.id for t in store.list_tasks(2, 0, newest_first=True)] == task_ids[:2:-1]
    assert [t.id for t in store.list_tasks(10, 4)] == task_ids[4:]
    assert [t.number for t in store.trials(task_ids[0], 2, 3)] == [3, 4]
    assert store.trials(task_ids[0], 2, 5) == []
    # The pages' own queries (not the floors and epochs loaded beside the rows they return).
    pages = [s for s in statements if re.search(r"FROM ARCHSEARCH_(TASKS|TRIALS)\b", s)]
    assert len(pages) == 5 and all("LIMIT" in s and "OFFSET" in s for s in pages), statements
    assert [t.id for t in store.list_tasks()] == task_ids  # unpaged: every task, oldest first
    store.close()


def test_stores_opened_by_many_threads_at_once(db_url):
    """The API's worker threads each open a store (and so run the migrations) at once."""
    from concurrent.futures import ThreadPoolExecutor

    def open_and_list(_: int) -> int:
        store = Store(db_url)
        try:
            return len(store.list_tasks())
        finally:
            store.close()

    Store(db_url).close()  # the schema exists: the threads only check it, as the API's do
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(open_and_list, range(32))) == [0] * 32


def test_floor_roundtrip(db_url):
    store = Store(db_url)
    task_id, other = new_task(store), new_task(store)
    assert store.get_task(task_id).floor is None
    floor = FloorResult("minirocket+ridge", 0.95, 0.99, 0.6, 1.2, 0.31, 40)
    store.save_floor(task_id, floor)
    assert store.get_task(task_id).floor == floor
    store.record_floor_cross_validation(task_id, 0.97, 0.02, 5)
    again = FloorResult("minirocket+ridge", 0.9, None, 0.5, 1.0, 0.3, 40)
    store.save_floor(other, again)  # one floor per task: saving again replaces it
    store.save_floor(other, again)
    assert store.get_task(other).floor == again
    store.close()
    reopened = Store(db_url)
    (first, second) = reopened.list_tasks()
    assert first.floor == FloorResult("minirocket+ridge", 0.95, 0.99, 0.6, 1.2, 0.31, 40,
                                      0.97, 0.02, 5)
    assert second.floor == again
    with pytest.raises(NotFoundError, match="no floor"):
        reopened.record_floor_cross_validation(new_task(reopened), 0.5, 0.1, 3)
    reopened.close()


def test_rerun_trial_resets_its_epochs(db_url):
    store = Store(db_url)
    task_id = new_task(store)
    store.start_trial(task_id, 0, "lstm", {})
    store.record_epoch(task_id, 0, EpochReport(1, 1.0, 0.5, 0.1))
    store.start_trial(task_id, 0, "lstm", {})  # an interrupted trial run again
    store.record_epoch(task_id, 0, EpochReport(1, 1.0, 0.4, 0.1))
    (trial,) = store.trials(task_id)
    assert trial.status == "running" and [e.val_score for e in trial.epochs] == [0.4]
    store.close()


def test_missing_task_is_a_clear_error(db_url):
    store = Store(db_url)
    with pytest.raises(NotFoundError, match="task 42"):
        store.get_task(42)
    store.close()


def test_reopen_keeps_data_and_schema(db_url):
    store = Store(db_url)
    task_id = new_task(store)
    store.close()
    again = Store(db_url)  # migrations run again: a no-op at head
    assert again.get_task(task_id).fingerprint == "abc"
    again.close()


def _write_search(url: str, n_trials: int, n_epochs: int, start) -> tuple[int, float, float]:
    """One search's writes; returns (task id, first write, last write) on a wall clock."""
    store = Store(url)
    start.wait()  # the four writers begin together: the test is about contention
    began = time.time()
    task_id = new_task(store)
    for number in range(n_trials):
        store.start_trial(task_id, number, "gru", {})
        for epoch in range(1, n_epochs + 1):
            store.record_epoch(task_id, number, EpochReport(epoch, 1.0, 0.5, 0.1))
        store.finish_trial(task_id, number, TrialOutcome(TrialStatus.COMPLETED, COST, n_epochs,
                                                         1, 0.5, 0.5, 0.1))
    ended = time.time()
    store.close()
    return task_id, began, ended


def test_four_concurrent_writers_lose_no_rows(db_url):
    Store(db_url).close()  # create the schema once, as `archsearch db upgrade` would
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, context.Pool(4) as pool:
        # Each worker blocks at the barrier until all four hold a task, so the four searches
        # run in four processes at once.
        start = manager.Barrier(4, timeout=300)
        results = pool.starmap(_write_search, [(db_url, 10, 5, start)] * 4)
    task_ids = [task_id for task_id, _, _ in results]
    # The writes overlapped in time: every writer began before any had finished.
    assert max(began for _, began, _ in results) < min(ended for _, _, ended in results)
    store = Store(db_url)
    assert len(set(task_ids)) == 4
    for task_id in task_ids:
        trials = store.trials(task_id)
        assert len(trials) == 10 and all(len(t.epochs) == 5 for t in trials)
    store.close()


def test_upgrade_from_the_first_schema_keeps_rows(db_url):
    from sqlalchemy import text

    from archsearch.store.session import create_db_engine, upgrade

    engine = create_db_engine(db_url)
    upgrade(engine, "0001")  # a database as the first release left it
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO archsearch_tasks (id, created_at, updated_at, status, source, "
            "dataset_name, task_kind, metric_name, metric_direction, seed, constraints, options, "
            "space_name, meta_features) VALUES (1, '2026-01-01', '2026-01-01', 'completed', 's', "
            "'d', 'regression', 'mse', 'minimize', 0, '{}', '{}', 'default', '{}')"))
        conn.execute(text(
            "INSERT INTO archsearch_trials (id, task_id, number, family, config, status, "
            "epochs_run, train_seconds, started_at) VALUES (1, 1, 0, 'gru', '{}', 'completed', "
            "2, 1.0, '2026-01-01')"))
    engine.dispose()
    store = Store(db_url)  # upgrades to head
    (trial,) = store.trials(1)
    assert trial.family == "gru" and trial.cv_score is None
    store.record_cross_validation(1, 0, 0.5, 0.1, 5)
    assert store.trials(1)[0].cv_folds == 5
    store.close()


def test_a_lease_is_taken_by_one_driver_at_a_time_and_lapses(db_url):
    store = Store(db_url)
    task_id = new_task(store, status=TaskStatus.RUNNING)
    assert store.acquire_lease(task_id, "first", 60)
    assert not store.acquire_lease(task_id, "second", 60)  # a live holder: refused
    assert store.acquire_lease(task_id, "first", 60)  # its holder may take it again
    assert store.renew_lease(task_id, "first", 60) == (True, False)
    assert store.renew_lease(task_id, "second", 60) == (False, False)
    assert store.get_task(task_id).status == "running"
    # A live driver is asked to stop through the database, and is not written over.
    assert store.request_cancel(task_id)
    assert store.renew_lease(task_id, "first", 60) == (True, True)
    assert not store.end_unfinished(task_id, TaskStatus.INTERRUPTED, "cancelled")
    assert not store.settle(task_id, "second", status=TaskStatus.COMPLETED)
    # The holder stops renewing: readers see the task interrupted, and it can be taken over.
    store.start_trial(task_id, 0, "gru", {})
    assert store.renew_lease(task_id, "first", 0.5)[0]
    time.sleep(0.6)
    lapsed = store.get_task(task_id)
    assert lapsed.status == "interrupted" and f"--resume {task_id}" in lapsed.error
    assert [t.status for t in store.list_tasks() if t.id == task_id] == ["interrupted"]
    assert not store.request_cancel(task_id)  # nobody left to ask
    assert store.acquire_lease(task_id, "second", 60)
    assert not store.get_task(task_id).cancel_requested  # a new holder starts afresh
    assert store.get_task(task_id).status == "running"
    assert store.renew_lease(task_id, "first", 60) == (False, False)  # the old one lost it
    assert store.settle(task_id, "second", status=TaskStatus.COMPLETED, error=None)
    ended = store.get_task(task_id)
    assert ended.status == "completed" and ended.lease_owner is None
    store.close()


def test_a_queued_task_no_driver_took_reads_interrupted_after_a_lease(db_url, monkeypatch):
    """Its server stopped between storing it and starting its driver: after a whole lease
    without a driver, readers (a restarted server among them) see it interrupted, resumable."""
    monkeypatch.setenv("ARCHSEARCH_LEASE_SECONDS", "0.5")
    store = Store(db_url)
    task_id = new_task(store, status=TaskStatus.QUEUED)
    assert store.get_task(task_id).status == "queued"  # a driver may still be on its way
    time.sleep(0.6)
    orphan = store.get_task(task_id)
    assert orphan.status == "interrupted" and "no driver ever took it" in orphan.error
    assert f"POST /tasks/{task_id}/resume" in orphan.error
    assert store.acquire_lease(task_id, "resumer", 60)
    assert store.get_task(task_id).status == "queued"  # a driver holds it now
    store.close()


def test_a_task_without_a_live_driver_is_ended_with_its_running_trials(db_url):
    store = Store(db_url)
    task_id = new_task(store, status=TaskStatus.RUNNING)
    store.start_trial(task_id, 0, "gru", {})
    store.record_epoch(task_id, 0, EpochReport(1, 1.0, 0.4, 0.1))
    assert store.end_unfinished(task_id, TaskStatus.FAILED, "driver died")
    assert store.get_task(task_id).status == "failed"
    (trial,) = store.trials(task_id)
    assert trial.status == "failed" and trial.error == "driver died" and trial.val_score == 0.4
    assert not store.end_unfinished(task_id, TaskStatus.INTERRUPTED, "again")  # already ended
    store.close()


def test_reading_paths_refuse_an_old_schema_and_db_upgrade_brings_it_up(tmp_path, capsys):
    """`archsearch tasks`, `report` and `recommend` do not migrate: a database behind the
    package's schema is refused (exit 2, one paragraph, unchanged); `db upgrade` upgrades it."""
    from archsearch.cli import main
    from archsearch.store import OutdatedSchema, head_revision, schema_revision_of
    from archsearch.store.session import create_db_engine, upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_db_engine(url)
    upgrade(engine, "0004")  # a database as an older release left it
    engine.dispose()
    for command in (["tasks"], ["report", "1"], ["recommend", "builtin:adding?n=40"]):
        assert main([*command, "--db", url]) == 2
        err = capsys.readouterr().err
        assert "schema revision 0004" in err and f"archsearch db upgrade --db {url}" in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert schema_revision_of(url) == "0004"
    with pytest.raises(OutdatedSchema):
        Store(url, upgrade=False)
    assert main(["db", "upgrade", "--db", url]) == 0
    assert schema_revision_of(url) == head_revision()
    assert main(["tasks", "--db", url]) == 0
    with Store(url, upgrade=False) as store:  # at head: read as it is
        assert store.list_tasks() == []


def test_a_store_is_a_context_manager_and_a_new_database_gets_the_schema(tmp_path):
    from archsearch.store import head_revision

    url = f"sqlite:///{tmp_path / 'new.db'}"
    with Store(url, upgrade=False) as store:  # nothing to migrate: the schema is created
        assert store.schema_revision() == head_revision()
        new_task(store)
    with Store(url) as store:
        assert len(store.list_tasks()) == 1


def test_a_fenced_driver_writes_only_while_it_holds_the_lease(db_url):
    from archsearch.store.lease import LeaseLost

    with Store(db_url) as first, Store(db_url) as second:
        task_id = new_task(first, status=TaskStatus.RUNNING)
        other_task = new_task(first, status=TaskStatus.RUNNING)
        assert first.acquire_lease(task_id, "first", 0.5)
        first.fence(task_id, "first")
        first.start_trial(task_id, 0, "gru", {})  # held: written
        first.start_trial(other_task, 0, "gru", {})  # another task: not fenced
        time.sleep(0.6)  # the lease lapses and another driver takes the task
        assert second.acquire_lease(task_id, "second", 60)
        second.fence(task_id, "second")
        for write in (lambda: first.record_epoch(task_id, 0, EpochReport(1, 1.0, 0.5, 0.1)),
                      lambda: first.start_trial(task_id, 1, "lstm", {}),
                      lambda: first.update_task(task_id, status=TaskStatus.COMPLETED)):
            with pytest.raises(LeaseLost, match=f"task {task_id}"):
                write()
        # Nothing of the old driver's landed; the new holder writes as usual.
        trials = second.trials(task_id)
        assert [t.number for t in trials] == [0] and not trials[0].epochs
        assert second.get_task(task_id).status == "running"
        second.record_epoch(task_id, 0, EpochReport(1, 1.0, 0.4, 0.1))
        assert [e.val_score for e in second.trials(task_id)[0].epochs] == [0.4]
