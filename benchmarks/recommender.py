"""Benchmark the recommender: leave-one-task-out over the built-in tasks.

    python benchmarks/recommender.py [--quick] [--seed N] [--keep DIR]
    python benchmarks/recommender.py --rescore DIR
    python benchmarks/recommender.py --knowledge-base [MATRIX] [--unseen MATRIX] [--warm-start]

``--knowledge-base`` trains nothing (seconds): it scores the instant pick by leave-one-task-out
over the knowledge base's matrix (default: the shipped one, docs/knowledge-base.md). Each
measured corpus task is held out in turn (its row removed) and picked for from the others'
rows as ``archsearch recommend`` picks (the zero-shot portfolio of the other tasks leads when one
lies near enough, else the rules as prior and the ranker; a family a hard rule excludes is no
candidate), beside the rules alone, a uniformly random family and the best constant pick (the
family that is a best family most often on the other tasks). Regret is ``1 - s(pick)``, ``s``
the held-out task's normalised test score over its candidates; families tied with the best
(equal test scores) are all best families. ``top3_rate`` is the share of held-out tasks with a
best family among the instant ranking's first three; ``confidence`` holds the reliability
table (stated confidence against the observed rate of right picks, raw and calibrated by
leave-one-task-out), the expected calibration error and the Brier score. The last line is
one JSON object with ``tasks``, ``regret`` (``instant``, ``rules_only``, ``random``,
``best_constant``, ``validation_oracle``), ``top3_rate``, ``validation_oracle_top3_rate``,
``best_family_share`` (the largest share of tasks on which one family is a best family),
``by_source`` (the same summary over the ``synthetic`` tasks, drawn by a generator, and the
``real`` ones apart: the generators' fresh test sets and the real sets' fixed ones are not
equally noisy), ``confidence``, ``unseen`` and the knowledge base's provenance.

The **validation oracle** is not an instant pick: it picks by the held-out task's own cells'
validation scores (ties broken at random, in expectation), as a search of exactly those cells
would. Its regret is the noise between a cell's validation and test score, a floor that no
pick made without the task's measurements is expected to go below; it says how much of the
instant pick's regret a better recommender could still remove.

``unseen`` judges the knowledge base where nothing was tuned: the instant pick on each unseen
set of ``benchmarks/unseen.yaml`` whose every family is measured (``--unseen MATRIX``, default
``benchmarks/unseen/matrix.csv``, built by ``benchmarks/knowledge.py build --corpus
benchmarks/unseen.yaml``), made from every corpus task, scored as above (``tasks``, ``regret``,
``top3_rate``, ``per_task``; ``tasks`` 0 and ``why`` while none is measured).

``--knowledge-base --warm-start`` replays, per held-out task, a search's initial design in three
orders (the zero-shot portfolio of the other tasks, then the prior's order; the prior's order
alone: rules and ranker, what a search did before the portfolio; the rules' ranking alone)
through the simulated backend, and reports the trials (and training seconds) each needs to
reach its final best: what is simulated is :data:`SIMULATED`, in detail docs/knowledge-base.md.

``--rescore DIR`` scores the recommender again on the searches a ``--keep DIR`` run left there,
without searching: the same measured tasks, the recommender as it is now.

1. Every built-in data set that loads here (a real one whose package is missing is listed under
   ``skipped``, with the reason) gets a small real search through the normal workflow, all
   writing one temporary SQLite database, all trials run by one embedded Ray runtime. The
   pruner is off and the budget covers every family of the benchmark's space, so each task
   measures every family (the initial design is one trial per family).
2. For each task, held out in turn: the instant answer (no trials of its own) is computed twice,
   **rules only** (the rules file) and **rules + data** (the rules plus the scikit-learn ranker
   fitted on every *other* task in the database). Its regret is ``1 - s(recommended family)``,
   with ``s`` the held-out task's normalised family score (best validation score per family,
   1 = the best measured family, 0 = the worst; errors on a log scale): 0 is a perfect pick, 1
   the worst family.
3. Reported beside them, measured in the same run: the ranker alone (the family it scores
   highest) and the expected regret of a family drawn uniformly at random.

``--quick``: 4 families (gru, lstm, transformer, tcn), synthetic tasks at length <= 32 and 400
sequences, 120 optimizer steps, width 32, one trial per family: 52 short trials and 13 reports
(benchmarks/RESULTS.md gives measured wall times). The full run: every family of the default
space, the built-in lengths, 800 sequences, the default space's step budget, two trials per
family. Both train every family with the same
learning rate, batch size and dropout (:data:`FIXED_TRAINING`), so that a task's best family is
the family, not the luckiest draw of a learning rate. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archsearch.data import load_dataset  # noqa: E402
from archsearch.data.builtin import BUILTIN_TASKS  # noqa: E402
from archsearch.errors import DataError  # noqa: E402
from archsearch.options import SearchOptions  # noqa: E402
from archsearch.recommend import (  # noqa: E402
    PastTask,
    evidence_for_task,
    facts_for,
    load_rules,
    recommend,
)
from archsearch.recommend.calibration import (  # noqa: E402
    MIN_CALIBRATION_TASKS,
    ConfidenceCalibrator,
    HeldOutPick,
    expected_calibration_error,
    held_out_picks,
    reliability_table,
)
from archsearch.recommend.knowledge import (  # noqa: E402
    MATRIX_FILE,
    KnowledgeBase,
    load_corpus,
    load_knowledge_base,
)
from archsearch.recommend.ranker import best_families, normalised_scores  # noqa: E402
from archsearch.search.ray_backend.runtime import ray_runtime  # noqa: E402
from archsearch.space import SearchSpace, load_space  # noqa: E402
from archsearch.space.schema import default_space_path  # noqa: E402
from archsearch.store import Store, TaskRecord  # noqa: E402
from archsearch.types import Constraints  # noqa: E402
from archsearch.workflow import SearchRequest, run_task  # noqa: E402
from benchmarks.knowledge import UNSEEN_CORPUS, UNSEEN_MATRIX  # noqa: E402

QUICK = {"families": ["gru", "lstm", "tcn", "transformer"], "max_length": 32, "n": 400,
         "steps": 120, "d_model": 32, "trials_per_family": 1}
FULL = {"families": None, "max_length": None, "n": 800, "steps": None, "d_model": None,
        "trials_per_family": 2}


# Every family trains with the same settings: the benchmark compares families, and with a
# learning rate drawn per trial the "best family" of a task is mostly the luckiest draw.
FIXED_TRAINING = {"lr": 0.003, "batch_size": 32, "weight_decay": 0.0}
FIXED_SHARED = {"dropout": 0.1, "quantize": "none"}


def benchmark_space(out_dir: Path, settings: dict[str, Any]) -> tuple[Path, list[str]]:
    """The default space, cut down to the benchmark's families, step budget and widths, with the
    training settings fixed (:data:`FIXED_TRAINING`, :data:`FIXED_SHARED`)."""
    raw = yaml.safe_load(default_space_path().read_text(encoding="utf-8"))
    if settings["families"]:
        raw["families"] = {f: raw["families"][f] for f in settings["families"]}
    raw["training"].update(FIXED_TRAINING)
    if settings["steps"]:
        raw["training"]["max_steps"] = settings["steps"]
    raw["shared"].update(FIXED_SHARED)
    if settings["d_model"]:
        raw["shared"]["d_model"] = settings["d_model"]
    path = out_dir / "benchmark_space.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path, sorted(raw["families"])


def task_specs(settings: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """``builtin:`` specs of the tasks that load here, and why the others were skipped."""
    specs, skipped = [], {}
    for name, task in BUILTIN_TASKS.items():
        params = []
        if "length" in task.defaults:
            length = task.defaults["length"]
            if settings["max_length"]:
                length = min(length, settings["max_length"])
            params = [f"length={length}", f"n={settings['n']}"]
        spec = f"builtin:{name}" + ("?" + "&".join(params) if params else "")
        try:
            load_dataset(spec)
        except DataError as exc:
            skipped[name] = str(exc).split(";")[0]
            continue
        specs.append(spec)
    return specs, skipped


def regret(family: str, truth: dict[str, float]) -> float:
    return 1.0 - truth[family]


def evaluate(store: Store, families: list[str]) -> list[dict[str, Any]]:
    """Leave-one-task-out over every completed task in ``store`` (see the module docstring)."""
    rows = []
    for task, best in store.past_results():
        truth = normalised_scores({f: t.val_score for f, t in best.items()},
                                  task.metric.direction == "maximize")
        if set(truth) != set(families):
            continue  # a family without a completed trial: no regret can be scored
        facts = facts_for(task.meta_features, task.task_kind, task.constraints)
        rules_only = recommend(facts, families, task.metric, [])
        past = evidence_for_task(store, task, families)
        with_data = recommend(facts, families, task.metric, [], past=past)
        ranker = max(past.scores, key=past.scores.get) if past.available else None
        rows.append({
            "task": task.dataset_name, "task_id": task.id, "kind": task.task_kind,
            "best_family": max(truth, key=truth.get),
            "scores": {f: round(best[f].val_score, 4) for f in families},
            "rules_only": rules_only.family,
            "rules_data": with_data.family,
            "ranker_only": ranker,
            "regret_rules_only": round(regret(rules_only.family, truth), 4),
            "regret_rules_data": round(regret(with_data.family, truth), 4),
            "regret_ranker_only": round(regret(ranker, truth), 4) if ranker else None,
            "regret_random": round(statistics.fmean(1.0 - v for v in truth.values()), 4),
            "past_tasks": past.n_tasks,
            "trust_factor": with_data.trust.factor if with_data.trust else None,
        })
    return rows


def validation_oracle(pick: HeldOutPick, validation: dict[str, float]) -> tuple[float, float]:
    """The held-out task's own validation scores (its cells' ``val_score``) picking among its
    candidates: the expected regret of their best and the chance that a best family is among
    their first three, ties in validation broken at random. The pick a search of exactly these
    cells would make: what is left of its regret is the noise between validation and test."""
    sign = 1.0 if pick.task.metric.maximizes else -1.0
    scored = {f: sign * validation[f] for f in pick.truth if f in validation}
    groups = [[f for f, v in scored.items() if v == level]
              for level in sorted(set(scored.values()), reverse=True)]
    oracle_regret = statistics.fmean(regret(f, pick.truth) for f in groups[0])
    best = set(pick.best_families)  # a property: computed from the truth on each access
    slots, none_best = 3, 1.0
    for group in groups:
        taken = min(slots, len(group))
        missing = sum(f not in best for f in group)
        none_best *= math.comb(missing, taken) / math.comb(len(group), taken)
        slots -= taken
        if not slots:
            break
    return oracle_regret, 1.0 - none_best


def knowledge_base_rows(picks: list[HeldOutPick], corpus: list[PastTask],
                        measured: KnowledgeBase) -> list[dict[str, Any]]:
    """One row per pick (see ``--knowledge-base`` in the module docstring); the best constant
    pick is the one of the ``corpus`` tasks other than the pick's own; ``measured`` holds the
    picked-for tasks' validation scores (:func:`validation_oracle`) and sources."""
    validation = measured.scores("val")
    rows = []
    for pick in picks:
        truth = pick.truth
        others = [task for task in corpus if task.name != pick.task.name]
        constant = best_constant(others, sorted(truth))
        oracle_regret, oracle_top3 = validation_oracle(pick, validation[pick.task.name])
        rows.append({
            "task": pick.task.name, "kind": pick.task.task_kind,
            "source": measured.tasks[pick.task.name].source,
            "best_families": pick.best_families,
            "instant": pick.instant.family, "rules_only": pick.rules_only.family,
            "best_constant": constant,
            "regret_instant": round(regret(pick.instant.family, truth), 4),
            "regret_rules_only": round(regret(pick.rules_only.family, truth), 4),
            "regret_random": round(statistics.fmean(1.0 - v for v in truth.values()), 4),
            "regret_best_constant": round(regret(constant, truth), 4),
            "regret_validation_oracle": round(oracle_regret, 4),
            "best_in_top3": any(r.family in pick.best_families
                                for r in pick.instant.ranking[:3]),
            "validation_oracle_top3": round(oracle_top3, 4),
            "portfolio": list(pick.portfolio.families),
            "trust_factor": pick.instant.trust.factor if pick.instant.trust else None,
            "confidence_raw": pick.instant.confidence,
        })
    return rows


def confidence_calibration(picks: list[HeldOutPick]) -> dict[str, Any]:
    """The instant pick's stated confidence against how often it was right: raw, and
    calibrated by leave-one-task-out (each task's confidence mapped by a calibrator fitted on
    the other tasks' pairs; with fewer than MIN_CALIBRATION_TASKS of them, the raw value)."""
    raw = [pick.instant.confidence for pick in picks]
    right = [pick.right for pick in picks]
    calibrated = []
    for i in range(len(picks)):
        rest = [j for j in range(len(picks)) if j != i]
        calibrator = ConfidenceCalibrator().fit([raw[j] for j in rest], [right[j] for j in rest])
        calibrated.append(float(calibrator.predict([raw[i]])[0]))
    tables = {"raw": reliability_table(raw, right), "calibrated": reliability_table(calibrated,
                                                                                    right)}
    stated = {"raw": raw, "calibrated": calibrated}
    return {"min_tasks": MIN_CALIBRATION_TASKS,
            "calibrated": len(picks) - 1 >= MIN_CALIBRATION_TASKS,
            "right_rate": round(statistics.fmean(right), 3) if right else None,
            "reliability": tables,
            "ece": {name: expected_calibration_error(table) for name, table in tables.items()},
            # A proper score beside the binned ECE, which one bin holding every pick makes 0.
            "brier": {name: round(statistics.fmean((s - r) ** 2 for s, r in zip(
                values, right, strict=True)), 4) if right else None
                for name, values in stated.items()}}


class _Silent:
    """The observer of a replayed search: the numbers read the coordinator, not the events."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def replay_initial_design(order: list[str], held: PastTask, train_seconds: dict[str, float],
                          default: SearchSpace, seed: int = 0) -> dict[str, Any]:
    """Replay a search whose initial design runs ``order`` (one trial per family, one at a
    time) on the held-out task through the simulated backend; how many trials and how many
    training seconds it takes to reach its final best (see ``--warm-start``); the space is
    ``default`` cut to the families of ``order``."""
    import optuna

    from archsearch.search.coordinator import Coordinator
    from archsearch.search.optuna_bridge import OptunaBridge
    from archsearch.search.simulated import Curve, simulate
    from archsearch.types import Objectives

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = dataclasses.replace(default, families={f: p for f, p in default.families.items()
                                                   if f in order})
    rounds, metric = space.max_rounds(), held.metric
    # The random sampler: a family's hyperparameters (only the family is enqueued) change
    # nothing here, since every configuration of a family replays one curve; TPE would spend
    # seconds drawing them.
    bridge = OptunaBridge.create(space, metric, seed, "random", "none", rounds, None,
                                 "kb-warm-start", Objectives.parse("quality"))
    bridge.enqueue_initial_design([], tuple(order))

    def curve_of(spec: Any) -> Curve:
        final = held.scores[spec.arch.family]
        span = max(abs(final), 1e-6)  # from this much worse, linearly, to the cell's score
        return Curve(tuple(final - metric.sign * span * (1 - r / rounds)
                           for r in range(1, rounds + 1)),
                     train_seconds[spec.arch.family] / rounds)

    coordinator = Coordinator(bridge, _Silent(), Constraints(), seed)
    simulation = simulate(coordinator, curve_of, len(order))
    scores = [coordinator.completed[number].val_score for number, _ in simulation.ended
              if number in coordinator.completed]
    final = max(scores, key=metric.utility)
    reached = next(i for i, score in enumerate(scores) if score == final)
    seconds = sum(train_seconds[coordinator.specs[number].arch.family]
                  for number, _ in simulation.ended[:reached + 1])
    return {"trials_to_best": reached + 1, "seconds_to_best": round(seconds, 1),
            "first": coordinator.specs[simulation.ended[0][0]].arch.family}


def warm_start_rows(picks: list[HeldOutPick], knowledge: KnowledgeBase) -> list[dict[str, Any]]:
    """Per held-out task: the trials a search needs to reach its final best when its initial
    design follows the zero-shot portfolio of the other tasks, the instant recommendation's
    order (what a search did before the portfolio) and the rules' order alone."""
    seconds = {(c.task, c.family): c.train_seconds or 0.0 for c in knowledge.cells}
    default = load_space()
    rows = []
    for pick in picks:
        held = pick.task
        train = {f: seconds[(held.name, f)] for f in pick.truth}
        orders = {"portfolio": list(pick.portfolio.order),
                  "prior_order": list(pick.portfolio.fallback),
                  "rules_order": [r.family for r in pick.rules_only.ranking]}
        row: dict[str, Any] = {"task": held.name, "best_families": pick.best_families,
                               "portfolio": list(pick.portfolio.families)}
        for name, order in orders.items():
            replayed = replay_initial_design(order, held, train, default)
            row[f"trials_{name}"] = replayed["trials_to_best"]
            row[f"seconds_{name}"] = replayed["seconds_to_best"]
        rows.append(row)
    return rows


def best_constant(tasks: list[PastTask], candidates: list[str]) -> str:
    """The candidate that is a best family on the most ``tasks`` (a tie for the best counts
    for each tied family; ties in count: the higher mean normalised score, then the first
    name)."""
    wins = dict.fromkeys(candidates, 0)
    means: dict[str, list[float]] = {f: [] for f in candidates}
    for task in tasks:
        scores = normalised_scores(task.scores, task.metric.maximizes)
        for winner in best_families(scores):
            if winner in wins:
                wins[winner] += 1
        for family, value in scores.items():
            if family in means:
                means[family].append(value)
    return max(sorted(candidates, reverse=True),
               key=lambda f: (wins[f], statistics.fmean(means[f] or [0.0])))


def knowledge_base_main(matrix: Path, warm_start: bool, unseen: Path = UNSEEN_MATRIX) -> int:
    start = time.perf_counter()
    knowledge = load_knowledge_base(matrix)
    if knowledge is None:
        print(f"{matrix}: no measured cell yet; build it with benchmarks/knowledge.py build.",
              file=sys.stderr)
        return 2
    corpus, families, rules = knowledge.past_tasks(), sorted(load_space().families), load_rules()
    provenance = knowledge.provenance()
    picks = held_out_picks(corpus, families, rules, provenance)
    if warm_start:
        result = warm_start_result(warm_start_rows(picks, knowledge))
    else:
        result = picks_result(knowledge_base_rows(picks, corpus, knowledge), picks)
        result["unseen"] = unseen_result(unseen, corpus, families, rules, provenance)
    result.update({"knowledge_base": provenance,
                   "seconds": round(time.perf_counter() - start, 1)})
    print(json.dumps(result))
    return 0


def unseen_result(matrix: Path, corpus: list[PastTask], families: list[str], rules: list[Any],
                  provenance: str) -> dict[str, Any]:
    """The instant pick on each measured unseen set (``benchmarks/unseen.yaml``), made from
    every corpus task of the knowledge base (``provenance`` its sentence), scored as the
    held-out corpus tasks are."""
    measured = load_knowledge_base(matrix, corpus=load_corpus(UNSEEN_CORPUS))
    if measured is None:
        return {"tasks": 0, "matrix": str(matrix),
                "why": "no unseen set has every family measured yet (benchmarks/knowledge.py "
                       "build --corpus benchmarks/unseen.yaml)"}
    picks = held_out_picks(corpus, families, rules, provenance, targets=measured.past_tasks())
    rows = knowledge_base_rows(picks, corpus, measured)
    print_rows(rows, "unseen ")
    return {**pick_summary(rows), "matrix": str(matrix), "measured": measured.provenance(),
            "per_task": rows}


def print_rows(rows: list[dict[str, Any]], prefix: str = "") -> None:
    for row in rows:
        print(f"{prefix}{row['task']}: best {'/'.join(row['best_families'])}; instant "
              f"{row['instant']} ({'portfolio' if row['portfolio'] else 'prior'}, regret "
              f"{row['regret_instant']:.3f}, confidence {row['confidence_raw']:.2f}), rules "
              f"{row['rules_only']} ({row['regret_rules_only']:.3f}), constant "
              f"{row['best_constant']} ({row['regret_best_constant']:.3f}), validation oracle "
              f"({row['regret_validation_oracle']:.3f})")


def pick_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean regrets, the top-3 rate and the largest share of best families over ``rows``."""
    winners = [family for row in rows for family in row["best_families"]]
    return {
        "tasks": len(rows),
        "regret": {name: mean(rows, f"regret_{name}") for name in
                   ("instant", "rules_only", "random", "best_constant", "validation_oracle")},
        "top3_rate": (round(sum(r["best_in_top3"] for r in rows) / len(rows), 3)
                      if rows else None),
        "validation_oracle_top3_rate": mean(rows, "validation_oracle_top3"),
        "best_family_share": (round(max(map(winners.count, winners)) / len(rows), 3)
                              if rows else None),
    }


def picks_result(rows: list[dict[str, Any]], picks: list[HeldOutPick]) -> dict[str, Any]:
    print_rows(rows)
    calibration = confidence_calibration(picks)
    for name, table in calibration["reliability"].items():
        print(f"Reliability ({name}): " + "; ".join(
            f"{row['bin'][0]:.1f}-{row['bin'][1]:.1f}: stated {row['stated']:.2f}, observed "
            f"{row['observed']:.2f} (n={row['n']})" for row in table)
            + f"; ECE {calibration['ece'][name]}, Brier {calibration['brier'][name]}")
    by_source = {source: pick_summary([r for r in rows if r["source"] == source])
                 for source in sorted({r["source"] for r in rows})}
    for source, summary in by_source.items():
        print(f"{source} tasks ({summary['tasks']}): regret " + ", ".join(
            f"{name} {value}" for name, value in summary["regret"].items())
            + f"; top 3 {summary['top3_rate']}, validation oracle's top 3 "
            f"{summary['validation_oracle_top3_rate']}")
    return {"benchmark": "recommender_knowledge_base_leave_one_task_out", **pick_summary(rows),
            "by_source": by_source, "confidence": calibration, "per_task": rows}


WARM_START_ORDERS = ("portfolio", "prior_order", "rules_order")
SIMULATED = ("replayed through archsearch/search/simulated.py, no training: one trial per family "
             "at a time in the initial design's order, each family's curve ending at the held-out "
             "task's measured test score after its measured training seconds; it measures where "
             "the best family sits in the order, not hyperparameter spread, seed noise or "
             "pruning")


def warm_start_result(rows: list[dict[str, Any]]) -> dict[str, Any]:
    for row in rows:
        print(f"{row['task']}: best {'/'.join(row['best_families'])}; portfolio "
              f"{', '.join(row['portfolio']) or 'none (no task near enough)'}; trials to the "
              "best: " + ", ".join(f"{name} {row[f'trials_{name}']}"
                                   for name in WARM_START_ORDERS))

    def median(key: str) -> float | None:
        values = [row[key] for row in rows]
        return statistics.median(values) if values else None

    return {
        "benchmark": "recommender_knowledge_base_warm_start",
        "tasks": len(rows),
        "portfolio_used": sum(bool(row["portfolio"]) for row in rows),
        "trials_to_best_median": {name: median(f"trials_{name}") for name in WARM_START_ORDERS},
        "trials_to_best_mean": {name: mean(rows, f"trials_{name}")
                                for name in WARM_START_ORDERS},
        "seconds_to_best_median": {name: median(f"seconds_{name}")
                                   for name in WARM_START_ORDERS},
        "portfolio_vs_prior_order": {
            "fewer": sum(r["trials_portfolio"] < r["trials_prior_order"] for r in rows),
            "same": sum(r["trials_portfolio"] == r["trials_prior_order"] for r in rows),
            "more": sum(r["trials_portfolio"] > r["trials_prior_order"] for r in rows)},
        "simulated": SIMULATED,
        "per_task": rows,
    }


def run_searches(specs: list[str], space: Path, budget: int, db_url: str, report_dir: Path,
                 seed: int) -> dict[str, float]:
    """One small search per task; returns seconds per task."""
    seconds = {}
    with ray_runtime(None):  # one embedded runtime: every search below joins it
        for spec in specs:
            tick = time.perf_counter()
            options = SearchOptions(budget_trials=budget, seed=seed, pruner="none", cv_folds=0)
            result = run_task(SearchRequest(data=spec, space=str(space), options=options,
                                            db_url=db_url, report_dir=report_dir),
                              printer=lambda line: None)
            seconds[spec] = round(time.perf_counter() - tick, 1)
            print(f"{spec}: {result['status']}, {result['trials']}, "
                  f"best {result['best']['family'] if result['best'] else None} "
                  f"({seconds[spec]} s)", file=sys.stderr, flush=True)
    return seconds


def mean(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return round(statistics.fmean(values), 4) if values else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small run: a few minutes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep the database and reports in DIR (default: a temp dir)")
    parser.add_argument("--rescore", type=Path, metavar="DIR",
                        help="score again the searches a --keep DIR run left in DIR")
    parser.add_argument("--knowledge-base", type=Path, nargs="?", const=MATRIX_FILE,
                        metavar="MATRIX", help="leave-one-task-out over the knowledge base's "
                        "matrix, training nothing (default: the shipped matrix)")
    parser.add_argument("--unseen", type=Path, default=UNSEEN_MATRIX, metavar="MATRIX",
                        help="with --knowledge-base: the unseen sets' matrix, scored apart "
                        "(default: benchmarks/unseen/matrix.csv)")
    parser.add_argument("--warm-start", action="store_true",
                        help="with --knowledge-base: the trials a search needs to reach its "
                        "final best with and without the portfolio warm start (replayed)")
    args = parser.parse_args(argv)
    if args.warm_start and not args.knowledge_base:
        parser.error("--warm-start measures over the knowledge base: add --knowledge-base")
    if args.knowledge_base:
        return knowledge_base_main(args.knowledge_base, args.warm_start, args.unseen)
    settings = QUICK if args.quick else FULL
    start = time.perf_counter()
    search_seconds: dict[str, float] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="archsearch-bench-") as tmp:
        out = args.rescore or args.keep or Path(tmp)
        if args.rescore:
            space = out / "benchmark_space.yaml"
            if not (out / "benchmark.db").is_file() or not space.is_file():
                parser.error(f"{out} holds no benchmark.db and benchmark_space.yaml: pass a "
                             "directory a --keep DIR run wrote")
            families = sorted(yaml.safe_load(space.read_text(encoding="utf-8"))["families"])
        else:
            out.mkdir(parents=True, exist_ok=True)
            space, families = benchmark_space(out, settings)
            specs, skipped = task_specs(settings)
            search_seconds = run_searches(specs, space,
                                          settings["trials_per_family"] * len(families),
                                          f"sqlite:///{out / 'benchmark.db'}", out / "reports",
                                          args.seed)
        with Store(f"sqlite:///{out / 'benchmark.db'}") as store:
            tasks: list[TaskRecord] = store.list_tasks()
            rows = evaluate(store, families)
    for row in rows:
        print(f"{row['task']}: best {row['best_family']}; rules {row['rules_only']} "
              f"(regret {row['regret_rules_only']:.3f}), rules+data {row['rules_data']} "
              f"(regret {row['regret_rules_data']:.3f})")
    rules_only, rules_data = mean(rows, "regret_rules_only"), mean(rows, "regret_rules_data")
    result = {
        "benchmark": "recommender_leave_one_task_out",
        "mode": "rescore" if args.rescore else "quick" if args.quick else "full",
        "families": families,
        "tasks_evaluated": len(rows),
        "tasks_searched": len(tasks),
        "skipped": skipped,
        "mean_regret_rules_only": rules_only,
        "mean_regret_rules_data": rules_data,
        "mean_regret_ranker_only": mean(rows, "regret_ranker_only"),
        "mean_regret_random": mean(rows, "regret_random"),
        "rules_data_over_rules_only": (round(rules_data / rules_only, 3)
                                       if rules_only else None),
        "rules_data_le_rules_only": (rules_data is not None and rules_only is not None
                                     and rules_data <= rules_only),
        "tasks": rows,
        "search_seconds": search_seconds,
        "seconds": round(time.perf_counter() - start, 1),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
