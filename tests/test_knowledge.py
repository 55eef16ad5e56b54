"""The knowledge base: its corpus, and a resumable build of its matrix (tiny budget)."""

import dataclasses
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archsearch.data import load_dataset
from archsearch.errors import ArchsearchError, UsageError
from archsearch.recommend.knowledge import (
    COMPLETED,
    MATRIX_FILE,
    Cell,
    CellBudget,
    append_cell,
    load_corpus,
    load_knowledge_base,
    read_cells,
    read_sidecar,
)
from archsearch.space import load_space
from benchmarks.knowledge import _written_by_builds, build, cell_trial, main, measure_cell

TINY = CellBudget(trials=1, max_steps=4, cv_folds=0)


def test_the_corpus_spans_the_axes_the_rules_reason_about():
    corpus = load_corpus()
    assert len(corpus.tasks) >= 30 and len({t.id for t in corpus.tasks}) == len(corpus.tasks)
    data = {t.id: load_dataset(t.data) for t in corpus.tasks}
    assert {d.task.value for d in data.values()} == {"classification", "regression",
                                                      "forecast"}
    lengths = [d.seq_len for d in data.values()]
    assert min(lengths) < 30 and max(lengths) >= 2000
    assert max(d.n_features for d in data.values()) >= 12
    assert min(d.n_sequences for d in data.values()) <= 100 <= max(
        d.n_sequences for d in data.values())
    assert any(t.constraints.streaming for t in corpus.tasks)
    # The generators' other axes: a vocabulary other than the default, and noisy targets.
    assert max(d.n_features for d in data.values() if "vocab=" in d.name) > 34
    assert any("noise=" in d.name for d in data.values())
    assert "CardanoSentiment" in corpus.unseen["aeon"]


@pytest.mark.parametrize("tasks, message", [
    ("  - {id: a, data: 'builtin:cardanosentiment', axes: x}\n", "one of the unseen sets"),
    ("  - {id: a, data: 'builtin:parity', axes: x}\n" * 2, "used by an earlier task"),
    ("  - {id: a, data: 'data.csv', axes: x}\n", "must be a builtin: spec"),
    ("  - {id: a, data: 'builtin:parity', axes: x, constraints: {fast: true}}\n",
     "bad constraints"),
])
def test_a_corpus_that_breaks_its_rules_is_refused_with_the_task_named(tmp_path, tasks,
                                                                       message):
    from archsearch.errors import ArchsearchError

    path = tmp_path / "corpus.yaml"
    path.write_text("version: 1\ntasks:\n" + tasks + "unseen: {aeon: [CardanoSentiment]}\n",
                    encoding="utf-8")
    with pytest.raises(ArchsearchError, match=message):
        load_corpus(path)


def test_the_unseen_sets_judge_the_corpus_and_are_listed_once(tmp_path):
    from archsearch.errors import ArchsearchError
    from benchmarks.knowledge import UNSEEN_CORPUS

    unseen = load_corpus(UNSEEN_CORPUS)
    names = {name.lower() for names in load_corpus().unseen.values() for name in names}
    assert unseen.role == "unseen" and len(unseen.tasks) >= 3
    for task in unseen.tasks:
        assert task.data.removeprefix("builtin:").partition("?")[0] in names
        load_dataset(task.data)
    path = tmp_path / "unseen.yaml"
    for body, message in [
        ("role: unseen\ntasks:\n  - {id: a, data: 'builtin:parity', axes: x}\n",
         "not one of the unseen sets"),
        ("role: unseen\ntasks: []\nunseen: {aeon: [GunPoint]}\n", "listed once"),
        ("role: judge\ntasks: []\n", "role must be one of corpus, unseen"),
    ]:
        path.write_text("version: 1\n" + body, encoding="utf-8")
        with pytest.raises(ArchsearchError, match=message):
            load_corpus(path)


def test_the_unseen_sets_never_reach_the_shipped_matrix_nor_its_calibration(capsys):
    from benchmarks.knowledge import UNSEEN_CORPUS

    for argv in (["build", "--corpus", str(UNSEEN_CORPUS), "--out", str(MATRIX_FILE)],
                 ["calibrate", "--corpus", str(UNSEEN_CORPUS)]):
        with pytest.raises(SystemExit):
            main(argv)
        assert "unseen" in capsys.readouterr().err


@pytest.fixture
def tiny_corpus(tmp_path):
    path = tmp_path / "corpus.yaml"
    path.write_text("version: 1\ntasks:\n"
                    "  - {id: parity-8, data: 'builtin:parity?length=8&n=64', axes: tiny}\n",
                    encoding="utf-8")
    return load_corpus(path)


def test_a_stopped_build_keeps_its_finished_cells_and_resumes(tmp_path, tiny_corpus):
    matrix = tmp_path / "matrix.csv"
    calls = []

    def stopped_at_the_second_cell(task, family, budget, run, folder):
        calls.append(family)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as Ctrl-C in the middle of a cell
        return measure_cell(task, family, budget, run, folder)

    families = ["gru", "tcn"]
    assert build(tiny_corpus, families, TINY, matrix, measure=stopped_at_the_second_cell,
                 printer=lambda line: None) == 1
    first = read_cells(matrix)
    assert [(c.task, c.family, c.status) for c in first] == [("parity-8", "gru", COMPLETED)]
    # The stopped cell's folder is kept for the next build; the finished one's is gone.
    work = tmp_path / "matrix.in-progress"
    assert [p.name for p in work.iterdir()] == ["parity-8--tcn--t1-s4-cv0-seed0"]
    cell = first[0]
    assert cell.device == "cpu" and cell.trials == 1 and 0 <= cell.test_score <= 1
    assert cell.params > 0 and cell.latency_ms > 0 and cell.train_seconds > 0
    # Run again: the finished cell is skipped, the interrupted one measured.
    calls.clear()
    assert build(tiny_corpus, families, TINY, matrix, measure=stopped_at_the_second_cell,
                 printer=lambda line: None) == 1
    assert calls == ["tcn"]
    assert [(c.family, c.run) for c in read_cells(matrix)] == [("gru", 0), ("tcn", 1)]
    assert not work.exists()  # no cell in progress: nothing left behind
    sidecar = read_sidecar(matrix)
    assert [run["cells"] for run in sidecar["runs"]] == [1, 1]
    run = sidecar["runs"][0]
    assert {"commit", "machine", "torch", "ray", "started", "budget"} <= set(run)
    assert sidecar["budget"] == {"trials": 1, "max_steps": 4, "cv_folds": 0, "seed": 0}
    assert sidecar["tasks"]["parity-8"]["meta_features"]["seq_len"] == 8
    assert "Not the knowledge base" in sidecar["note"]
    # The note counts the corpus x every family of the default space, not the families
    # this build was asked for (a build of one family once called the matrix complete).
    families_total = len(load_space().families)
    assert f"2 of {families_total} cells (1 tasks x {families_total} families)" in sidecar["note"]
    kb = load_knowledge_base(matrix)
    assert set(kb.scores()["parity-8"]) == {"gru", "tcn"} and "2 cells" in kb.provenance()
    assert not kb.pending
    # A task a build is still measuring (one family of two) is pending: not used, and said so.
    append_cell(matrix, dataclasses.replace(cell, task="parity-16"))
    kb = load_knowledge_base(matrix)
    assert list(kb.scores()) == ["parity-8"] and kb.pending == ("parity-16",)
    assert "Not used yet: the cells of parity-16, still being built" in kb.provenance()
    # Nothing left: a third build measures nothing; another budget is refused.
    assert build(tiny_corpus, families, TINY, matrix, printer=lambda line: None) == 0
    with pytest.raises(UsageError, match="would not compare"):
        build(tiny_corpus, families, CellBudget(), matrix, printer=lambda line: None)


def test_a_cell_its_surroundings_stopped_is_kept_for_the_next_build_not_failed(tmp_path,
                                                                            tiny_corpus):
    # A full disk (or a database gone) stops the cell's search: the build stops too, records
    # no failed cell, and keeps the cell's folder so that the next build resumes it.
    from archsearch.errors import TaskStopped

    def full_disk(task, family, budget, run, folder):
        (folder / "cell.db").write_bytes(b"")  # as far as the search got
        raise TaskStopped("task 1 stopped: a write failed: database or disk is full.")

    matrix, lines = tmp_path / "matrix.csv", []
    assert build(tiny_corpus, ["gru", "tcn"], TINY, matrix, measure=full_disk,
                 printer=lines.append) == 0
    assert read_cells(matrix) == [] and "disk is full" in lines[-1]
    assert [p.name for p in (tmp_path / "matrix.in-progress").iterdir()] == [
        "parity-8--gru--t1-s4-cv0-seed0"]


@pytest.mark.slow
def test_a_cell_whose_build_was_killed_resumes_its_search_not_a_new_one(tmp_path):
    """kill -9 of a build once its cell's first trial has finished: the next build resumes that
    search (the finished trials kept as they were, the cut ones run again, the budget met)
    instead of measuring the cell again."""
    from benchmarks.knowledge import CELL_DB, SECONDS_HEARTBEAT, status

    corpus_file = tmp_path / "corpus.yaml"
    corpus_file.write_text("version: 1\ntasks:\n  - {id: adding-24, data: "
                           "'builtin:adding?length=24&n=300', axes: tiny}\n", encoding="utf-8")
    corpus = load_corpus(corpus_file)
    matrix, work = tmp_path / "matrix.csv", tmp_path / "cells"
    budget = CellBudget(trials=3, max_steps=60, cv_folds=0)
    folder = work / "adding-24--gru--t3-s60-cv0-seed0"

    def finished():
        try:
            with sqlite3.connect(folder / CELL_DB) as conn:
                return conn.execute("SELECT number, started_at, finished_at FROM "
                                    "archsearch_trials WHERE status = 'completed' "
                                    "ORDER BY number").fetchall()
        except sqlite3.OperationalError:  # no database or tables yet
            return []

    lease_s = 6
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "knowledge.py"
    driver = subprocess.Popen(
        [sys.executable, str(script), "build", "--corpus", str(corpus_file), "--out",
         str(matrix), "--work", str(work), "--families", "gru", "--trials", "3", "--steps",
         "60", "--cv-folds", "0"], env={**os.environ, "ARCHSEARCH_LEASE_SECONDS": str(lease_s)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not finished() and time.monotonic() < deadline:
        assert driver.poll() is None, driver.returncode
        time.sleep(0.2)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    before = finished()
    assert 1 <= len(before) < 3 and read_cells(matrix) == []
    [in_progress] = status(corpus, matrix, work)["in_progress"]
    killed_seconds = in_progress.pop("seconds_spent")  # the heartbeat's last value
    # the killed trials' rounds: what their resume goes on from (or starts over, without one)
    rounds = in_progress.pop("rounds_of_unfinished_trials")
    assert in_progress == {"cell": folder.name, "trials_finished": len(before)}
    assert set(rounds).isdisjoint(number for number, _, _ in before)
    assert len(rounds) + len(before) <= 3
    assert all(0 <= n <= 4 for n in rounds.values())  # 60 steps, a round every 15
    assert killed_seconds >= SECONDS_HEARTBEAT  # the first trial took longer than one beat
    time.sleep(lease_s + 1)  # the killed build's search reads interrupted once its lease lapses

    after, resumed_seconds = [], []

    def resumed(task, family, budget, run, folder):
        started = time.perf_counter()
        measured = measure_cell(task, family, budget, run, folder)
        resumed_seconds.append(time.perf_counter() - started)
        after.extend(finished())  # before the build removes the folder
        return measured

    lines = []
    assert build(corpus, ["gru"], budget, matrix, measure=resumed, printer=lines.append,
                 work=work) == 1
    assert any("resuming the search" in line for line in lines)
    # Every trial finished before the kill is still there, untouched (same start and end).
    assert len(after) == 3 and set(before) <= set(after)
    [cell] = read_cells(matrix)
    assert cell.status == COMPLETED and cell.trials == 3
    # The cell's time is both sittings': the killed one's (to its last beat) and the resumed.
    assert abs(cell.cell_seconds - (killed_seconds + resumed_seconds[0])) < 0.5
    assert not work.exists()  # the cell is in the matrix: its folder is gone


def test_a_quick_budget_never_writes_the_shipped_matrix(capsys):
    with pytest.raises(SystemExit):
        main(["build", "--trials", "1"])
    assert "needs --out" in capsys.readouterr().err
    main(["status", "--out", "/nonexistent/matrix.csv"])
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["cells"] == 0


def test_the_status_in_the_docs_matches_the_shipped_matrix():
    # The counts and hours in the docs are written by hand after each build run.
    root = Path(__file__).resolve().parents[1]
    doc = (root / "docs" / "knowledge-base.md").read_text()
    cells = read_cells()
    tasks = {t.id for t in load_corpus().tasks}
    by_task = {task: [c for c in cells if c.task == task] for task in tasks}
    complete = len(load_knowledge_base().tasks)  # the tasks whose cells are used
    assert f": {len(cells)} of {len(tasks) * len(load_space().families)} cells." in doc
    assert f"**{complete} tasks complete**" in doc
    assert f"({complete} of {len(tasks)} corpus" in (root / "README.md").read_text()
    table = doc.split("### Time per cell on the long tasks")[1].split("\n## ")[0]
    rows = re.findall(r"^\| ([\w-]+) \| ([\w ]+) \| ([\d.]+) \|", table, re.M)
    assert rows
    for task, family, hours in rows:
        measured = [c for c in by_task[task] if family.startswith("all") or c.family == family]
        assert measured and abs(sum(c.cell_seconds for c in measured) / 3600 - float(hours)) \
            <= 0.05, (task, family, hours)


def test_status_scales_the_hours_left_by_each_task_length():
    from archsearch.recommend.knowledge import Corpus, CorpusTask
    from benchmarks.knowledge import hours_left

    corpus = Corpus(1, (CorpusTask("long", "builtin:parity?length=200", "measured"),
                        CorpusTask("short", "builtin:parity?length=16", "measured"),
                        CorpusTask("longer", "builtin:adding?length=1000&n=50", "to build"),
                        CorpusTask("unsized", "builtin:gunpoint", "to build")), {})

    def cell(task, family, seconds):
        return Cell(task, family, "cpu", COMPLETED, 0.5, 0.5, None, None, None, 1.0, 1.0, 10,
                    1.0, 4, seconds, 0, "2026-12-01T00:00Z")

    cells = [cell("long", "gru", 4000.0), cell("short", "gru", 500.0),
             cell("long", "tcn", 1000.0)]
    facts = {"long": {"meta_features": {"seq_len": 200}},
             "short": {"meta_features": {"seq_len": 16}}}
    left = hours_left(corpus, cells, facts, ["gru", "tcn"])
    # gru: 20 s per step of length on the long task (the short one is fixed costs, not steps),
    # tcn 5 s; a task of unknown length takes each family's mean cell time (gru 2250 s).
    assert left == {"short": round(5 * 16 / 3600, 2), "longer": round(25 * 1000 / 3600, 2),
                    "unsized": round((2250 + 1000) / 3600, 2)}


def test_a_tasks_own_cells_correct_the_hours_left_of_its_missing_ones():
    from archsearch.recommend.knowledge import Corpus, CorpusTask
    from benchmarks.knowledge import hours_left

    corpus = Corpus(1, (CorpusTask("long", "builtin:parity?length=200", "measured"),
                        CorpusTask("slow", "builtin:parity?length=400", "to build")), {})

    def cell(task, family, seconds):
        return Cell(task, family, "cpu", COMPLETED, 0.5, 0.5, None, None, None, 1.0, 1.0, 10,
                    1.0, 4, seconds, 0, "2026-12-01T00:00Z")

    families = ["gru", "lstm", "rnn", "tcn"]
    # 10 s per step of length for each family on the long task; on the slow task (400 steps)
    # gru and lstm took the 4000 s that predicts, rnn twice that (so its median is 15 s per
    # step): 16000 s measured where 14000 s were predicted, and tcn's 4000 s scale with it.
    cells = [cell("long", f, 2000.0) for f in families] + [
        cell("slow", "gru", 4000.0), cell("slow", "lstm", 4000.0), cell("slow", "rnn", 8000.0)]
    facts = {"long": {"meta_features": {"seq_len": 200}},
             "slow": {"meta_features": {"seq_len": 400}}}
    assert hours_left(corpus, cells, facts, families) == {
        "slow": round(16000 / 14000 * 4000 / 3600, 2)}
    # Two cells are too few to say the task is slow: the length alone predicts (rnn, tcn).
    assert hours_left(corpus, cells[:-1], facts, families) == {"slow": round(8000 / 3600, 2)}


FAMILIES = ["gru", "lstm", "tcn", "transformer"]


def test_the_cross_validated_finalist_stands_for_its_cell_even_in_a_tie():
    # Two trials of one family tie on validation accuracy; the search cross-validated the one
    # it chose, and the cell carries that trial's scores, folds included.
    from archsearch.types import Metric
    from tests.records import trial_record

    accuracy = Metric("accuracy", "maximize")
    first = trial_record(id=1, number=0, val_score=0.15, test_score=0.15)
    chosen = trial_record(id=2, number=2, val_score=0.15, test_score=0.18, cv_score=0.14,
                          cv_std=0.01, cv_folds=5)
    worse = trial_record(id=3, number=3, val_score=0.10)
    assert cell_trial([first, chosen, worse], accuracy) is chosen
    assert cell_trial([first, worse], accuracy) is first
    assert cell_trial([], accuracy) is None


def test_stale_cells_are_taken_out_recorded_and_measured_again(tmp_path):
    from archsearch.recommend.knowledge import Cell, write_sidecar
    from benchmarks.knowledge import remeasure

    path = tmp_path / "corpus.yaml"
    path.write_text("version: 1\ntasks:\n"
                    "  - {id: parity-8, data: 'builtin:parity?length=8&n=64', axes: a}\n"
                    "  - {id: parity-12, data: 'builtin:parity?length=12&n=64', axes: b}\n",
                    encoding="utf-8")
    corpus, matrix = load_corpus(path), tmp_path / "matrix.csv"
    for task in ("parity-8", "parity-12"):
        for family in ("gru", "tcn"):
            append_cell(matrix, Cell(task, family, "cpu", COMPLETED, 0.5, 0.5, None, None, None,
                                     1.0, 1.0, 10, 1.0, 1, 1.0, 0, "2026-12-01T00:00Z"))
    write_sidecar(matrix, {"format": 1, "corpus_version": 1, "note": "", "runs": [],
                           "budget": dataclasses.asdict(TINY),
                           "tasks": {"parity-8": {}, "parity-12": {}}})
    with pytest.raises(UsageError, match="--why"):
        remeasure(corpus, matrix, ["parity-8"], " ")
    with pytest.raises(ArchsearchError, match="no corpus task 'parity-9'"):
        remeasure(corpus, matrix, ["parity-9"], "a typo")
    assert len(read_cells(matrix)) == 4  # nothing taken out by a refused call
    entry = remeasure(corpus, matrix, ["parity-8"], "the training changed")
    assert entry["cells"] == 2 and entry["tasks"] == ["parity-8"]
    assert {c.task for c in read_cells(matrix)} == {"parity-12"}
    sidecar = read_sidecar(matrix)
    assert sidecar["remeasured"] == [entry] and entry["why"] == "the training changed"
    assert set(sidecar["tasks"]) == {"parity-12"} and "2 of" in sidecar["note"]
    measured = []

    def recorded(task, family, budget, run, folder):
        measured.append((task.id, family))
        return measure_cell(task, family, budget, run, folder)

    assert build(corpus, ["gru", "tcn"], TINY, matrix, measure=recorded,
                 printer=lambda line: None) == 2
    assert measured == [("parity-8", "gru"), ("parity-8", "tcn")]
    # One family's cells only (e.g. measured without their folds): the task's facts stay.
    with pytest.raises(UsageError, match="no family lstmm"):
        remeasure(corpus, matrix, ["parity-8"], "a typo", ["lstmm"])
    entry = remeasure(corpus, matrix, ["parity-8", "parity-12"], "no folds", ["tcn"])
    assert entry["cells"] == 2 and entry["families"] == ["tcn"]
    assert {(c.task, c.family) for c in read_cells(matrix)} == {("parity-8", "gru"),
                                                                ("parity-12", "gru")}
    assert set(read_sidecar(matrix)["tasks"]) == {"parity-8", "parity-12"}


def write_matrix(path, winners):
    """A hand-made matrix: on task ``name`` (length ``n``) the family ``winners[n]`` scores
    0.9, the others 0.5 (accuracy); the sidecar as a build writes it."""
    from archsearch.recommend.knowledge import Cell, append_cell, write_sidecar

    tasks = {}
    for n, winner in winners.items():
        name = f"task-{n}"
        for family in FAMILIES:
            score = 0.9 if family == winner else 0.5
            append_cell(path, Cell(name, family, "cpu", COMPLETED, score, score, None, None,
                                   None, 1.0, 1.0, 1000, 1.0, 4, 10.0, 0, "2026-12-01T00:00Z"))
        tasks[name] = {"data": f"builtin:parity?length={n}", "kind": "classification",
                       "metric": {"name": "accuracy", "direction": "maximize"},
                       "meta_features": {"seq_len": n, "n_sequences": 1000, "n_features": 1}}
    write_sidecar(path, {"format": 1, "corpus_version": 1, "note": "Hand-made for a test.",
                         "budget": {"trials": 4, "max_steps": 300, "cv_folds": 5, "seed": 0},
                         "runs": [{"commit": "abc1234", "started": "2026-12-01T00:00:00Z"}],
                         "tasks": tasks})


def test_the_instant_pick_learns_from_the_matrix_and_names_its_nearest_tasks(tmp_path):
    from archsearch.recommend import facts_for, past_evidence, recommend
    from archsearch.types import Metric

    # Against the rules (short sequences: recurrent), tcn wins every short task.
    matrix = tmp_path / "matrix.csv"
    write_matrix(matrix, {16: "tcn", 20: "tcn", 24: "tcn", 32: "tcn", 40: "tcn", 48: "tcn",
                          2000: "transformer", 3000: "transformer", 4000: "transformer"})
    knowledge = load_knowledge_base(matrix)
    assert len(knowledge.tasks) == 9 and "abc1234" in knowledge.provenance()
    meta = {"seq_len": 30, "n_sequences": 1000, "n_features": 1}
    past = past_evidence([], meta, "classification", FAMILIES,
                         corpus=knowledge.past_tasks(), knowledge=knowledge.provenance())
    assert past.available and past.n_corpus == 9 and past.scores["tcn"] == 1.0
    rec = recommend(facts_for(meta, "classification", {}), FAMILIES,
                    Metric("accuracy", "maximize"), [], past=past)
    assert rec.family == "tcn" and rec.trust.factor > 0
    text = " ".join(rec.rationale)
    assert "9 corpus tasks of the knowledge base" in text
    assert "task-32 (corpus, best tcn" in text and "Knowledge base matrix.csv: 36 cells" in text
    # What a search's report says of the prediction: agreed, or what the search picked.
    from archsearch.recommend.rationale import knowledge_verdict

    assert knowledge_verdict("tcn", "tcn", past).endswith("9 measured corpus task(s)); the "
                                                          "search agreed.")
    assert knowledge_verdict("tcn", "gru", past).endswith("the search picked gru instead.")
    assert knowledge_verdict("tcn", "gru", past_evidence([], meta, "classification",
                                                         FAMILIES)) is None


def test_the_knowledge_base_benchmark_scores_leave_one_task_out(tmp_path, capsys):
    from benchmarks.recommender import main as benchmark

    matrix = tmp_path / "matrix.csv"
    write_matrix(matrix, {16: "tcn", 20: "tcn", 24: "tcn", 32: "tcn", 40: "tcn", 48: "tcn",
                          2000: "transformer", 3000: "transformer", 4000: "transformer"})
    assert benchmark(["--knowledge-base", str(matrix)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["tasks"] == 9
    assert set(result["regret"]) == {"instant", "rules_only", "random", "best_constant",
                                     "validation_oracle"}
    regret = result["regret"]
    # The hand-made cells score validation as test: their own validation picks the best.
    assert regret["validation_oracle"] == 0.0 and result["validation_oracle_top3_rate"] == 1.0
    assert regret["instant"] < regret["rules_only"] and regret["instant"] < regret["random"]
    assert regret["instant"] <= regret["best_constant"]
    assert 0.0 <= result["top3_rate"] <= 1.0 and result["best_family_share"] == pytest.approx(
        6 / 9, abs=1e-3)
    # Every hand-made task is a parity task: all synthetic, summarised as the whole.
    assert set(result["by_source"]) == {"synthetic"}
    assert result["by_source"]["synthetic"]["regret"] == regret
    # The unseen sets, scored apart: picked for from every corpus task; none measured yet.
    empty = tmp_path / "none.csv"
    assert benchmark(["--knowledge-base", str(matrix), "--unseen", str(empty)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["unseen"]["tasks"] == 0 and "benchmarks/unseen.yaml" in result["unseen"]["why"]
    unseen = tmp_path / "unseen.csv"
    write_matrix(unseen, {28: "tcn", 3500: "transformer", 36: "gru"})
    assert benchmark(["--knowledge-base", str(matrix), "--unseen", str(unseen)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    scored = result["unseen"]
    assert result["tasks"] == 9 and scored["tasks"] == 3
    assert [row["task"] for row in scored["per_task"]] == ["task-28", "task-3500", "task-36"]
    picks = {row["task"]: row["instant"] for row in scored["per_task"]}
    assert picks["task-28"] == "tcn" and picks["task-3500"] == "transformer"
    assert picks["task-36"] == "tcn"  # the corpus says tcn; this unseen set disagrees
    assert scored["regret"]["instant"] == pytest.approx(1 / 3, abs=1e-3)
    assert " on 3 unseen tasks (cpu)" in scored["measured"]


def test_the_validation_oracle_breaks_validation_ties_at_random():
    from archsearch.recommend.calibration import HeldOutPick
    from archsearch.recommend.ranker import PastTask
    from archsearch.types import Metric
    from benchmarks.recommender import validation_oracle

    task = PastTask("t", None, "classification", {}, {}, Metric("accuracy", "maximize"), {})
    pick = HeldOutPick(task, {"a": 1.0, "b": 0.5, "c": 0.0, "d": 0.2}, None, None, None)
    # c leads validation alone; a and b share the next two places: a best family is in them.
    assert validation_oracle(pick, {"a": 0.8, "b": 0.8, "c": 0.9, "d": 0.1}) == (1.0, 1.0)
    # c and b tie first (expected regret of either); a and d tie for the one place left.
    assert validation_oracle(pick, {"a": 0.8, "b": 0.9, "c": 0.9, "d": 0.8}) == (0.75, 0.5)


WARM_START_KEYS = {"benchmark", "tasks", "portfolio_used", "trials_to_best_median",
                   "trials_to_best_mean", "seconds_to_best_median",
                   "portfolio_vs_prior_order", "simulated", "per_task", "knowledge_base",
                   "seconds"}


def test_the_warm_start_benchmark_replays_the_initial_designs(tmp_path, capsys):
    from benchmarks.recommender import main as benchmark

    assert benchmark(["--knowledge-base", "--warm-start"]) == 0  # the shipped matrix
    shipped = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(shipped) == WARM_START_KEYS and shipped["tasks"] >= 3
    assert set(shipped["trials_to_best_median"]) == {"portfolio", "prior_order",
                                                     "rules_order"}
    # Short tasks won by tcn against the rules (recurrent first): the portfolio of the other
    # short tasks starts with tcn, the rules' order reaches it later.
    matrix = tmp_path / "matrix.csv"
    write_matrix(matrix, {16: "tcn", 20: "tcn", 24: "tcn", 2000: "transformer",
                          3000: "transformer"})
    assert benchmark(["--knowledge-base", str(matrix), "--warm-start"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["tasks"] == 5 and result["portfolio_used"] == 5
    assert result["trials_to_best_median"]["portfolio"] == 1
    assert result["trials_to_best_median"]["rules_order"] > 1


def test_the_instant_confidence_is_calibrated_only_on_enough_fresh_held_out_tasks(tmp_path):
    from archsearch.recommend import load_rules
    from archsearch.recommend.calibration import (
        MIN_CALIBRATION_TASKS,
        state_confidence,
        write_calibration,
    )
    from archsearch.recommend.knowledge import Cell, append_cell

    matrix = tmp_path / "matrix.csv"
    write_matrix(matrix, {16: "tcn", 20: "tcn", 24: "tcn", 32: "tcn", 40: "tcn", 48: "tcn",
                          2000: "transformer", 2500: "transformer", 3000: "transformer",
                          4000: "transformer"})
    knowledge = load_knowledge_base(matrix)
    assert "no held-out" in state_confidence(0.3, knowledge).sentence
    written = write_calibration(knowledge, FAMILIES, load_rules())
    assert len(written["pairs"]) == 10 >= MIN_CALIBRATION_TASKS
    stated = state_confidence(0.3, knowledge)
    assert stated.calibrated and 0.0 <= stated.value <= 1.0 and stated.raw == 0.3
    assert "calibrated on 10 held-out corpus tasks" in stated.sentence
    # A cell measured since: the pairs are stale, and the raw value is stated.
    append_cell(matrix, Cell("task-16", "gru", "cpu", COMPLETED, 0.95, 0.95, None, None, None,
                             1.0, 1.0, 1000, 1.0, 4, 10.0, 0, "2026-12-02T00:00Z"))
    stale = state_confidence(0.3, load_knowledge_base(matrix))
    assert not stale.calibrated and stale.value == 0.3
    assert "made on another matrix" in stale.sentence
    # Too few held-out tasks: said, and the raw value kept.
    few = tmp_path / "few.csv"
    write_matrix(few, {16: "tcn", 20: "tcn", 4000: "transformer"})
    write_calibration(load_knowledge_base(few), FAMILIES, load_rules())
    assert "only 3 held-out corpus task(s)" in state_confidence(0.3,
                                                               load_knowledge_base(few)).sentence


def test_a_builds_own_matrix_files_are_not_counted_as_uncommitted_code(tmp_path):
    # A second build in one worktree found the first build's matrix (and, once a task was
    # complete, its calibration) changed and flagged its run "uncommitted_changes": the files a
    # build writes are left out of that check, when they
    # are in the repository at all.
    assert _written_by_builds(MATRIX_FILE) == [
        ":(exclude)archsearch/recommend/knowledge/matrix.csv",
        ":(exclude)archsearch/recommend/knowledge/matrix.json",
        ":(exclude)archsearch/recommend/knowledge/matrix.calibration.json"]
    assert _written_by_builds(tmp_path / "matrix.csv") == []
