"""Bad input: exit code 2, one clear paragraph, no traceback, nothing written to the DB."""

import json

import numpy as np
import pytest

from archsearch.cli import main
from archsearch.store import Store


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
