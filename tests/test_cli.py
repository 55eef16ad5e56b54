"""Bad input: exit code 2, one clear paragraph, no traceback, nothing written to the DB."""

import json

import numpy as np
import pytest

import archsearch.data.real as real
from archsearch.cli import main
from archsearch.data import BUILTIN_TASKS
from archsearch.store import Store
from tests.data_corpus import write_bad_files


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    Store(url).close()
    return url


def run_cli(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def npz(tmp_path, name="data.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return str(path)


BAD_SEARCHES = [
    (["--budget-trials", "0"], "must be at least 1"),
    (["--budget-trials", "many"], "not an integer"),
    (["--budget-minutes", "-1"], "greater than 0"),
    (["--budget-minutes", "inf"], "greater than 0"),
    (["--gpus-per-trial", "-0.5"], "at least 0"),
    (["--cv-folds", "-2"], "at least 0"),
    (["--task", "translation"], "invalid choice"),
    (["--task", "classification"], "is a regression data set"),
    (["--lookback", "0"], "must be at least 1"),
    (["--horizon", "soon"], "not an integer"),
    (["--impute", "median"], "invalid choice"),
    (["--id-column", "step"], "two different columns"),
    (["--target", "y"], "do not apply"),
    (["--constraint", "max_params=lots"], "positive int"),
    (["--constraint", "colour=blue"], "unknown constraint 'colour'"),
    (["--pruner", "magic"], "invalid choice"),
    (["--frobnicate"], "unrecognized arguments"),
]


@pytest.mark.parametrize("extra, fragment", BAD_SEARCHES)
def test_bad_options_exit_2(extra, fragment, db, capsys):
    code, out, err = run_cli(["search", "builtin:adding", "--db", db, *extra], capsys)
    assert code == 2
    assert fragment in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1  # one paragraph


@pytest.mark.parametrize("name", ["ARCHSEARCH_SNAPSHOT_SECONDS", "ARCHSEARCH_LEASE_SECONDS"])
def test_a_bad_environment_setting_is_refused_before_a_task_is_stored(name, db, capsys,
                                                                       monkeypatch):
    monkeypatch.setenv(name, "-1")
    code, _, err = run_cli(["search", "builtin:adding", "--db", db], capsys)
    assert code == 2 and f"{name}='-1'" in err and "Traceback" not in err
    monkeypatch.delenv(name)
    code, out, _ = run_cli(["tasks", "--db", db, "--json"], capsys)
    assert code == 0 and json.loads(out.strip().splitlines()[-1]) == []


def test_search_needs_data_or_resume(db, capsys):
    code, _, err = run_cli(["search", "--db", db], capsys)
    assert code == 2 and "either DATA" in err
    code, _, err = run_cli(["search", "builtin:adding", "--resume", "1", "--db", db], capsys)
    assert code == 2 and "not both" in err
    code, _, err = run_cli(["search", "--resume", "3", "--db", db], capsys)
    assert code == 2 and "task 3 is not in the database" in err


def bad_data_sources(tmp_path):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 definitely not a zip")
    unknown = tmp_path / "data.xyz"
    unknown.write_text("1,2,3")
    return [
        ("builtin:nosuch", "unknown built-in data set"),
        ("builtin:adding?length=abc", "must be an integer"),
        ("builtin:adding?colour=1", "takes key=value parameters"),
        (str(tmp_path / "missing.npz"), "does not exist"),
        (str(corrupt), "cannot read"),
        (str(unknown), "unsupported extension"),
        (npz(tmp_path, "noy.npz", X=np.zeros((10, 5))), "no array 'y'"),
        (npz(tmp_path, "rank.npz", X=np.zeros((10,)), y=np.zeros(10)), "must be (N, T)"),
        (npz(tmp_path, "nan.npz", X=np.full((10, 5), np.nan), y=np.zeros(10)), "NaN"),
        (npz(tmp_path, "one.npz", X=np.zeros((10, 5)), y=np.zeros(10, dtype=int)),
         "classes"),
    ]


def test_bad_data_exit_2_and_leave_the_db_unchanged(tmp_path, db, capsys):
    for source, fragment in bad_data_sources(tmp_path):
        code, out, err = run_cli(["search", source, "--db", db], capsys)
        assert code == 2, (source, err)
        assert fragment in err and "Traceback" not in err, (source, err)
    assert Store(db).list_tasks() == []


def test_bad_space_exit_2(tmp_path, db, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("families: {lstm: {n_layers: {type: int, low: 5, high: 1}}}")
    code, _, err = run_cli(["search", "builtin:adding", "--space", str(space), "--db", db],
                           capsys)
    assert code == 2 and "families.lstm.n_layers" in err and "Traceback" not in err
    assert Store(db).list_tasks() == []


def test_bad_database_url_exit_2(capsys):
    code, _, err = run_cli(["tasks", "--db", "nosuchdb://x"], capsys)
    assert code == 2 and "cannot use database URL" in err and "Traceback" not in err


def test_report_of_unknown_task_exit_2(db, capsys):
    code, _, err = run_cli(["report", "7", "--db", db], capsys)
    assert code == 2 and "task 7 is not in the database" in err


def test_tasks_json_on_empty_db(db, capsys):
    code, out, _ = run_cli(["tasks", "--db", db, "--json"], capsys)
    assert code == 0 and json.loads(out.strip().splitlines()[-1]) == []


def test_hand_made_bad_files_exit_2_through_the_cli(tmp_path, db, capsys):
    for bad in write_bad_files(tmp_path / "bad"):
        code, _, err = run_cli(["search", bad.source, *bad.args, "--db", db], capsys)
        assert code == 2, (bad.name, err)
        assert bad.expect in err.lower() and "Traceback" not in err, (bad.name, err)
        assert len(err.strip().splitlines()) == 1, bad.name
    assert Store(db).list_tasks() == []


def test_load_options_reach_recommend(tmp_path, capsys):
    t = np.arange(80)
    (tmp_path / "s.csv").write_text("when,load\n" + "".join(f"{i},{np.sin(i / 4):.4f}\n"
                                                           for i in t))
    source, db = str(tmp_path / "s.csv"), f"sqlite:///{tmp_path / 'none.db'}"
    code, _, err = run_cli(["recommend", source, "--db", db], capsys)
    assert code == 2 and "cannot tell its layout" in err
    code, out, _ = run_cli(["recommend", source, "--time-column", "when", "--lookback", "6",
                            "--horizon", "2", "--db", db, "--json"], capsys)
    assert code == 0
    meta = json.loads(out.strip().splitlines()[-1])["meta_features"]
    assert (meta["task"], meta["lookback"], meta["horizon"]) == ("forecast", 6, 2)
    assert not (tmp_path / "none.db").exists()  # an instant answer writes nothing


@pytest.mark.parametrize("packages", ["as installed here", "none installed"])
def test_datasets_lists_every_builtin(packages, capsys, monkeypatch):
    if packages == "none installed":
        monkeypatch.setattr(real, "_package_dir", lambda package: None)
    code, out, _ = run_cli(["datasets", "--json"], capsys)
    assert code == 0
    rows = json.loads(out.strip().splitlines()[-1])
    assert [r["name"] for r in rows] == list(BUILTIN_TASKS)
    for row in rows:
        task = BUILTIN_TASKS[row["name"]]
        assert row["source"] == f"builtin:{task.name}" and row["parameters"] == task.defaults
        assert row["available"] == task.available
        line = next(line for line in out.splitlines() if line.startswith(f"{task.name} "))
        assert task.description in line
        if not task.available:
            assert "pip install 'archsearch[datasets]'" in line
    assert all(r["available"] for r in rows if r["requires"] is None)
    if packages == "none installed":
        assert not any(r["available"] for r in rows if r["requires"] is not None)
