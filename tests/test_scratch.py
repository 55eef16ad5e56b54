"""Ray Tune's scratch folder of a task's search is removed at every end its driver lives
through, and what a driver killed with -9 left is removed by the next run of the same task."""

import tempfile

import pytest

from archsearch.search.scratch import scratch_prefix, tune_scratch

DB = "sqlite:////data/a.db"


@pytest.fixture(autouse=True)
def temp_root(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_the_scratch_folder_goes_at_the_end_of_the_run_even_a_failed_one(temp_root):
    with tune_scratch(DB, "archsearch-task-1") as path:
        (temp_root / path / "state.json").write_text("{}")
    with pytest.raises(SystemExit), tune_scratch(DB, "archsearch-task-1") as path:
        raise SystemExit(15)  # a SIGTERM, as Ray's driver handles it
    assert not any(temp_root.iterdir())


def test_a_run_removes_what_a_killed_run_of_the_same_task_left_and_nothing_else(temp_root):
    killed = temp_root / f"{scratch_prefix(DB, 'archsearch-task-1')}x1"
    other_task = temp_root / f"{scratch_prefix(DB, 'archsearch-task-2')}x2"
    other_db = temp_root / f"{scratch_prefix('sqlite:////data/b.db', 'archsearch-task-1')}x3"
    for folder in (killed, other_task, other_db):
        (folder / "trial_0").mkdir(parents=True)
    with tune_scratch(DB, "archsearch-task-1") as path:
        assert not killed.exists() and other_task.exists() and other_db.exists()
        assert path.startswith(str(temp_root / scratch_prefix(DB, "archsearch-task-1")))
    assert sorted(temp_root.iterdir()) == sorted([other_task, other_db])
