"""Benchmark the search engine: orchestration overhead, what pruning saves, TPE against random.

    python benchmarks/search.py [--quick] [--out DIR]
    python benchmarks/search.py --replay DB [DB ...] [--seeds 20] [--trials 30]

Every search is a real archsearch search (Ray Tune trials, the Optuna study, SQLite writes) on
the embedded Ray runtime, started once and shared by all searches; each search has its own
database so that no search warm-starts from another. Measured in one run:

- overhead_s_per_trial: identical short trials (one fixed configuration) run as a search on
  all of this machine's CPUs (one trial at a time, so the baseline is exact), against the same
  trials run directly with the trial runner (``archsearch.trial.run_trial``: cost
  measurement, training, test; no Ray, no Optuna, no database). Two searches, of N and 3N
  trials, so that what a search pays once (database migrations, the study, the report) cancels:
  ((search - direct)(3N) - (search - direct)(N)) / 2N. Target <= 0.2 s. The fixed cost per
  search is reported beside it.
- pruning_epoch_savings, pruning_best_delta: per sampler seed (1 to 5), the same random-sampler
  seed over the same built-in task with and without the pruner, so both runs train the same
  configurations in the same order and only the pruner differs: 1 - epochs(pruned) /
  epochs(unpruned), and the relative difference of the best validation score. Which
  configurations a seed draws moves both a lot (the median pruner saved 0.38 to 0.55 of a
  16-trial run's epochs across seeds), so the checks are the medians over the seeds, and every
  seed's numbers are reported beside them. Target: >= 0.5 and <= 0.01, for the default pruner
  (median); successive halving is reported beside it (Hyperband and Wilcoxon too without
  --quick). These searches run one trial at a time on all CPUs, so that each pruning decision
  sees every earlier trial and a run is repeatable (with trials side by side, which ones a
  pruner stops depends on which finished first).
- tpe_vs_random_compute_ratio: per seed, training seconds that TPE with the median pruner
  spends, in trial completion order, until it first matches random search's final best (that
  seed's unpruned run), over random search's total training seconds; the check is the median
  over the seeds where TPE got there (below 1: TPE+pruning got there cheaper), null when it
  never did.
- infeasible_epochs: epochs trained by trials that broke a parameter budget. Must be 0.

``--replay DB ...`` measures the pruners again on the learning curves that real searches
stored (e.g. the databases ``benchmarks/tsc.py --out DIR`` keeps), through the simulated
backend (archsearch/search/simulated.py: the same coordinator, Optuna sampler and pruner, on a
simulated clock): per task, a random-sampler search of ``--trials`` trials per seed, each
configuration replaying one stored curve of its family, with and without each pruner; the
epoch savings and best-score deltas over ``--seeds`` seeds, in seconds.

The last line printed is one JSON object (also written to DIR/search.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archsearch.data import load_dataset, prepare  # noqa: E402
from archsearch.options import SearchOptions  # noqa: E402
from archsearch.search.coordinator import Coordinator  # noqa: E402
from archsearch.search.optuna_bridge import OptunaBridge  # noqa: E402
from archsearch.search.ray_backend.runtime import ray_runtime  # noqa: E402
from archsearch.search.simulated import Curve, simulate  # noqa: E402
from archsearch.space import load_space  # noqa: E402
from archsearch.store import Store  # noqa: E402
from archsearch.trial import TrialSpec, run_trial  # noqa: E402
from archsearch.types import ArchConfig, Constraints, Metric, Objectives, TrainConfig  # noqa: E402
from archsearch.workflow import SearchRequest, run_task  # noqa: E402

OVERHEAD_DATA = "builtin:adding?length=16&n=200"
OVERHEAD_SPACE = """\
version: 1
training: {lr: 0.003, batch_size: 64, max_steps: 2, eval_every: 2, weight_decay: 0.0}
shared: {d_model: 8, dropout: 0.0, pooling: last}
families:
  gru: {n_layers: 1, bidirectional: false}
"""
PRUNING_SPACE = """\
version: 1
training:
  lr: {type: float, low: 1.0e-4, high: 3.0e-2, log: true}
  batch_size: {type: ordinal, choices: [32, 64]}
  max_steps: 80
  eval_every: 10
  weight_decay: 0.0
shared:
  d_model: {type: ordinal, choices: [16, 32]}
  dropout: {type: float, low: 0.0, high: 0.2}
  pooling: {type: categorical, choices: [last, mean]}
families:
  gru: {n_layers: {type: int, low: 1, high: 2}, bidirectional: false}
  lstm: {n_layers: {type: int, low: 1, high: 2}, bidirectional: false}
  transformer:
    n_layers: {type: int, low: 1, high: 2}
    n_heads: 2
    ff_mult: 2
    norm: pre
    pos_encoding: {type: categorical, choices: [sinusoidal, learned]}
    moe_experts: 0
    moe_top_k: 1
"""
PRUNING_DATA = "builtin:adding?length=32&n=600"
PRUNING_SEEDS = (1, 2, 3, 4, 5)
MSE = Metric("mse", "minimize")


def silent(line: str) -> None:
    """Progress lines are not part of a benchmark's output."""


def search(work: Path, name: str, data: str, space: Path, trials: int, **options: Any
           ) -> list[Any]:
    """One search in its own database; returns its stored trials."""
    db = f"sqlite:///{work / (name + '.db')}"
    summary = run_task(SearchRequest(data=data, space=str(space), options=SearchOptions(
        budget_trials=trials, cv_folds=0, **options), db_url=db, report_dir=work / "reports"),
                       silent)
    with Store(db) as store:
        return store.trials(summary["task_id"])


def overhead(work: Path, trials: int, cpus: int) -> dict[str, Any]:
    space = work / "overhead.yaml"
    space.write_text(OVERHEAD_SPACE)
    prepared = prepare(load_dataset(OVERHEAD_DATA), seed=0)
    parsed = load_space(space)
    hparams = {p.name: p.value for p in (*parsed.shared, *parsed.families["gru"])}
    train = TrainConfig(**{p.name: p.value for p in parsed.training})
    import torch

    torch.set_num_threads(cpus)  # what a trial that holds every CPU gets in its worker

    def direct(number: int) -> None:
        run_trial(TrialSpec(ArchConfig("gru", hparams), train, Constraints(), seed=number),
                  prepared, lambda report: None)

    direct(10**6)  # warm-up: the first trial in a process pays torch's one-time start-up costs
    runs = {}
    for n in (trials, 3 * trials):
        start = time.perf_counter()
        for number in range(n):
            direct(number)
        direct_s = time.perf_counter() - start
        start = time.perf_counter()
        stored = search(work, f"overhead-{n}", OVERHEAD_DATA, space, n, cpus_per_trial=cpus,
                        pruner="none")
        search_s = time.perf_counter() - start
        assert all(t.status == "completed" for t in stored), [t.error for t in stored]
        runs[n] = {"direct_s": round(direct_s, 3), "search_s": round(search_s, 3)}
    extra = {n: run["search_s"] - run["direct_s"] for n, run in runs.items()}
    per_trial = (extra[3 * trials] - extra[trials]) / (2 * trials)
    return {"runs": runs, "overhead_s_per_trial": round(per_trial, 4),
            "fixed_s_per_search": round(extra[trials] - trials * per_trial, 3)}


def best(trials: list[Any], metric: Metric = MSE) -> float | None:
    scores = [t.val_score for t in trials if t.status == "completed" and t.val_score is not None]
    if not scores:
        return None
    return max(scores, key=lambda score: metric.sign * score)


def compute_to_reach(trials: list[Any], target: float) -> float | None:
    """Training seconds spent, in completion order, until a trial first scores <= target."""
    spent = 0.0
    for trial in sorted(trials, key=lambda t: t.finished_at or t.started_at):
        spent += trial.train_seconds
        if trial.status == "completed" and trial.val_score is not None \
                and trial.val_score <= target:
            return spent
    return None


def epochs(trials: list[Any]) -> int:
    return sum(t.epochs_run for t in trials)


def pruning_effect(runs: dict[str, list[Any]], metric: Metric = MSE) -> dict[str, dict[str, Any]]:
    """Each pruner's run against the unpruned run of the same seed."""
    base_best, base_epochs = best(runs["none"], metric), epochs(runs["none"])
    return {name: {"epochs": epochs(trials), f"best_val_{metric.name}": best(trials, metric),
                   "pruned": sum(t.status == "pruned" for t in trials),
                   "epoch_savings": round(1 - epochs(trials) / base_epochs, 4),
                   "best_delta": round(abs(best(trials, metric) - base_best) / abs(base_best),
                                       4)}
            for name, trials in runs.items()}


def over_seeds(effects: list[dict[str, Any]]) -> dict[str, Any]:
    savings = [e["epoch_savings"] for e in effects]
    deltas = [e["best_delta"] for e in effects]
    return {"epoch_savings_median": round(statistics.median(savings), 4),
            "epoch_savings_min": min(savings), "epoch_savings_max": max(savings),
            "best_delta_median": round(statistics.median(deltas), 4),
            "best_delta_max": max(deltas),
            "seeds_best_kept": sum(d <= 0.01 for d in deltas),
            "seeds_meeting_both": sum(s >= 0.5 and d <= 0.01
                                      for s, d in zip(savings, deltas, strict=True)),
            "seeds": len(effects)}


@dataclass
class Replayed:
    """A replayed trial, as far as the pruning numbers look at it."""

    status: str = "running"
    val_score: float | None = None
    epochs_run: int = 0
    train_seconds: float = 0.0


class ReplayLog:
    """The observer of a replayed search: each trial's rounds and how it ended."""

    def __init__(self) -> None:
        self.trials: dict[int, Replayed] = {}

    def on_trial_start(self, number: int, arch: Any, train: Any) -> None:
        self.trials[number] = Replayed()

    def on_epoch(self, number: int, report: Any) -> None:
        self.trials[number].epochs_run = report.epoch
        self.trials[number].train_seconds = report.elapsed_s

    def on_trial_pruned(self, number: int, epoch: int) -> None:
        self.trials[number].status = "pruned"

    def on_trial_end(self, number: int, outcome: Any, checkpoint_dir: Any) -> None:
        self.trials[number].status = outcome.status.value
        self.trials[number].val_score = outcome.val_score

    def __getattr__(self, name: str) -> Any:  # the events the numbers do not need
        return lambda *args, **kwargs: None


def stored_curves(db: str) -> list[tuple[str, Metric, dict[str, list[Curve]]]]:
    """Per task of an archsearch database: its name, metric and the learning curves of its
    completed trials by family (validation score per round, training seconds per round)."""
    tasks = []
    with Store(db, upgrade=False) as store:
        for task in store.list_tasks():
            curves: dict[str, list[Curve]] = {}
            for trial in store.trials(task.id):
                if trial.status == "completed" and trial.epochs:
                    scores = tuple(e.val_score for e in trial.epochs)
                    curves.setdefault(trial.family, []).append(
                        Curve(scores, trial.train_seconds / len(scores)))
            if curves:
                where = Path(db.split("///", 1)[-1])  # the file of a sqlite URL
                tasks.append((f"{where.parent.name}/{where.stem}/{task.id} {task.dataset_name}",
                              task.metric,
                              curves))
    return tasks


def replayed_search(space: Any, metric: Metric, curves: dict[str, list[Curve]], pruner: str,
                    seed: int, trials: int) -> list[Replayed]:
    """A random-sampler search (the same draws whatever the pruner) over ``curves``: each
    configuration replays one stored curve of its family, the same one in every run."""
    bridge = OptunaBridge.create(space, metric, seed, "random", pruner, space.max_rounds(),
                                 None, "replay", Objectives.parse("quality"))
    bridge.enqueue_initial_design([])
    log = ReplayLog()

    def curve_of(spec: TrialSpec) -> Curve:
        family = curves[spec.arch.family]
        key = repr((sorted(spec.arch.hparams.items()), spec.train))
        return family[zlib.crc32(key.encode()) % len(family)]

    simulate(Coordinator(bridge, log, Constraints(), seed), curve_of, trials)
    return list(log.trials.values())


def replay(dbs: list[str], seeds: int, trials: int) -> dict[str, Any]:
    """``--replay``: the pruners on the stored curves of real searches, ``seeds`` seeds each,
    in seconds (no Ray, no training): the space is the default one, cut to the families that
    have curves."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    default = load_space()
    pruners = ("none", "median", "halving")
    result = {}
    for db in dbs:
        for name, metric, curves in stored_curves(db):
            space = dataclasses.replace(default, families={
                f: params for f, params in default.families.items() if f in curves})
            effects = [pruning_effect({p: replayed_search(space, metric, curves, p, seed, trials)
                                       for p in pruners}, metric)
                       for seed in range(1, seeds + 1)]
            result[name] = {"families": sorted(curves),
                            "curves": sum(len(c) for c in curves.values()),
                            **{p: over_seeds([e[p] for e in effects]) for p in pruners[1:]}}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="16 trials per search; median and successive halving only")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--replay", nargs="+", metavar="DB",
                        help="replay the stored learning curves of these databases' searches "
                             "instead (e.g. sqlite:///out/gunpoint.db); no training")
    parser.add_argument("--seeds", type=int, default=20, help="replay: seeds per task")
    parser.add_argument("--trials", type=int, default=30, help="replay: trials per search")
    args = parser.parse_args()
    if args.replay:
        started = time.perf_counter()
        tasks = replay(args.replay, args.seeds, args.trials)
        print(json.dumps({"benchmark": "search", "mode": "replay", "seeds": args.seeds,
                          "trials": args.trials, "tasks": tasks,
                          "wall_s": round(time.perf_counter() - started, 1)}))
        return
    n_overhead, n_search = (5, 16) if args.quick else (10, 30)
    cpus = os.cpu_count() or 1
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="archsearch-bench-") as tmp, ray_runtime(None):
        work = Path(tmp)
        space = work / "pruning.yaml"
        space.write_text(PRUNING_SPACE)
        result: dict[str, Any] = {"overhead": overhead(work, n_overhead, cpus)}

        pruners = ("none", "median", "halving") + (() if args.quick
                                                   else ("hyperband", "wilcoxon"))
        per_seed, tpe_ratios = {}, {}
        for seed in PRUNING_SEEDS:
            runs = {pruner: search(work, f"{pruner}-{seed}", PRUNING_DATA, space, n_search,
                                   pruner=pruner, sampler="random", seed=seed,
                                   cpus_per_trial=cpus)
                    for pruner in pruners}
            per_seed[seed] = pruning_effect(runs)
            tpe = search(work, f"tpe-{seed}", PRUNING_DATA, space, n_search, pruner="median",
                         seed=seed, cpus_per_trial=cpus)
            tpe_seconds = compute_to_reach(tpe, best(runs["none"]))
            random_seconds = sum(t.train_seconds for t in runs["none"])
            tpe_ratios[seed] = (round(tpe_seconds / random_seconds, 4)
                                if tpe_seconds is not None else None)
        result["pruning"] = {"seeds": per_seed, "over_seeds": {
            pruner: over_seeds([per_seed[seed][pruner] for seed in PRUNING_SEEDS])
            for pruner in pruners if pruner != "none"}}
        result["tpe_vs_random_by_seed"] = tpe_ratios

        budget = Constraints(max_params=2000)
        capped = search(work, "capped", PRUNING_DATA, space, n_search // 2, pruner="median",
                        constraints=budget, seed=PRUNING_SEEDS[0])
        infeasible = [t for t in capped if t.status == "infeasible"]

    median = result["pruning"]["over_seeds"]["median"]
    reached = [r for r in tpe_ratios.values() if r is not None]
    checks = {
        "overhead_s_per_trial": result["overhead"]["overhead_s_per_trial"],
        "pruning_epoch_savings": median["epoch_savings_median"],
        "pruning_best_delta": median["best_delta_median"],
        "tpe_vs_random_compute_ratio": (round(statistics.median(reached), 4)
                                        if reached else None),
        "infeasible_trials": len(infeasible),
        "infeasible_epochs": epochs(infeasible),
    }
    targets = {
        "overhead_s_per_trial": checks["overhead_s_per_trial"] <= 0.2,
        "pruning_epoch_savings": checks["pruning_epoch_savings"] >= 0.5,
        "pruning_best_delta": checks["pruning_best_delta"] <= 0.01,
        "infeasible_epochs": checks["infeasible_epochs"] == 0 and len(infeasible) > 0,
    }
    out = {"benchmark": "search", "quick": args.quick, "cpus": cpus,
           "wall_s": round(time.perf_counter() - started, 1), **result,
           "checks": checks, "targets_met": targets}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "search.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
