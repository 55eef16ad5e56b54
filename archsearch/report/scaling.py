"""Per-family cost vs sequence length on this hardware, for the report.

Each family's best configuration (its best completed trial) is rebuilt at a few lengths around
the task's ``T`` (``T/4, T/2, T, 2T, 4T``, capped at ``MAX_LENGTH``) and timed with the measure
room: batch-1 inference latency (median of ``REPEATS`` after one warm-up) and the forward's
peak memory, plus one training step at ``T``. Weights are random: cost does not depend on
them. A time budget keeps it to a few seconds; a length whose single forward already takes
longer than ``SLOW_FORWARD_S`` is the family's last. (The equal-size pair below is outside the
budget: its length cap bounds it.) The table is cached as JSON beside the report, keyed by the
trials it measured, so rendering the report again does not re-measure.

Beside it, the seed's "a Transformer trains 5-10x faster than an RNN at equal parameter count"
is measured as stated: :data:`EQUAL_SIZE_PAIR` (an LSTM and a Transformer of about the same
size, both 2 layers at width 64) trains one step each at the task's ``T`` on this hardware, or at
:data:`EQUAL_SIZE_MAX_LENGTH` when ``T`` is longer.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from archsearch.store import TaskRecord, TrialRecord
from archsearch.types import ArchConfig, Metric, ModelIO, TaskKind, TrialStatus

MAX_LENGTH = 4096
REPEATS = 3
BUDGET_S = 6.0
SLOW_FORWARD_S = 0.5
TRAIN_BATCH = 8
CACHE_FILE = "scaling.json"
# The equal-size pair's training steps (batch TRAIN_BATCH) are timed at the task's length up to
# this: at 4096 steps the pair took about 2.5 minutes on a loaded 2-core machine and the
# Transformer's attention several GB, in every report of a long-sequence task; at 1024, seconds.
EQUAL_SIZE_MAX_LENGTH = 1024
# The equal-size pair of the seed's speed claim: 2 layers at width 64 each, about 67k
# parameters either way on a 2-channel input (the same pair as benchmarks/blocks.py).
EQUAL_SIZE_PAIR = (("lstm", {"d_model": 64, "n_layers": 2}),
                   ("transformer", {"d_model": 64, "n_layers": 2, "n_heads": 4, "ff_mult": 2}))


@dataclass(frozen=True)
class ScalingRow:
    family: str
    trial: int
    params: int | None = None
    latency_ms: dict[int, float] = field(default_factory=dict)  # length -> median ms, batch 1
    memory_mb: dict[int, float] = field(default_factory=dict)  # length -> peak MB (forward)
    weights_mb: float | None = None
    train_step_ms: float | None = None  # one AdamW step at length T, batch TRAIN_BATCH
    error: str | None = None
    int8_on_cpu: bool = False  # an int8 copy: timed on the CPU whatever the table's device

    def exponent(self, kind: str) -> float | None:
        """Growth exponent k in cost ~ length^k, fitted on the upper half of the lengths
        (memory: activations only, the weights taken off)."""
        values = self.latency_ms if kind == "latency" else {
            n: v - (self.weights_mb or 0.0) for n, v in self.memory_mb.items()}
        points = sorted((n, v) for n, v in values.items() if v > 0)
        points = points[-max(2, (len(points) + 1) // 2):]
        if len(points) < 2:
            return None
        xs = [math.log(n) for n, _ in points]
        ys = [math.log(v) for _, v in points]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        den = sum((x - mx) ** 2 for x in xs)
        return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else None


@dataclass(frozen=True)
class ScalingTable:
    lengths: list[int]
    seq_len: int
    rows: list[ScalingRow]
    device: str
    threads: int
    memory_method: str
    seconds: float
    note: str = ""
    # family -> {"params", "hparams", "train_step_ms"} of EQUAL_SIZE_PAIR at
    # equal_size_length, or {"error"}; empty in a table cached before the pair was timed
    equal_size: dict[str, dict[str, Any]] = field(default_factory=dict)
    equal_size_length: int | None = None  # None in a table cached before it was capped

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(raw: Mapping[str, Any]) -> ScalingTable:
        rows = [ScalingRow(**{**row, "latency_ms": {int(k): v for k, v in
                                                    row["latency_ms"].items()},
                              "memory_mb": {int(k): v for k, v in row["memory_mb"].items()}})
                for row in raw["rows"]]
        return ScalingTable(**{**raw, "rows": rows})

    def key(self) -> list[list[Any]]:
        return sorted([row.family, row.trial] for row in self.rows)


def scaling_lengths(seq_len: int) -> list[int]:
    """T/4, T/2, T, 2T, 4T, capped at MAX_LENGTH, at least 2 steps, without repeats."""
    lengths = {min(MAX_LENGTH, max(2, int(seq_len * f))) for f in (0.25, 0.5, 1, 2, 4)}
    return sorted(lengths | {min(seq_len, MAX_LENGTH)})


def best_per_family(trials: Sequence[TrialRecord], metric: Metric) -> list[TrialRecord]:
    """Each family's best completed trial (by validation score), families sorted."""
    best: dict[str, TrialRecord] = {}
    for trial in trials:
        if trial.status != TrialStatus.COMPLETED.value or trial.val_score is None \
                or not math.isfinite(trial.val_score) or "model" not in (trial.config or {}):
            continue
        held = best.get(trial.family)
        if held is None or metric.better(trial.val_score, held.val_score):
            best[trial.family] = trial
    return [best[f] for f in sorted(best)]


def _model_io(task: TaskRecord, length: int) -> ModelIO:
    meta = task.meta_features
    kind = TaskKind(task.task_kind)
    # An anchored forecaster needs its targets' input channels; for timing, any one will do.
    anchors = ((0, 1.0, 0.0),) if kind is TaskKind.FORECAST else ()
    return ModelIO(n_features=int(meta.get("n_features") or 1), task=kind,
                   n_outputs=int(meta.get("n_outputs") or 1), max_len=length,
                   causal=bool(task.constraints.get("streaming")), anchors=anchors)


def measure_scaling(task: TaskRecord, trials: Sequence[TrialRecord],
                    budget_s: float = BUDGET_S) -> ScalingTable:
    """Time each family's best configuration at :func:`scaling_lengths` (see the module)."""
    import torch

    from archsearch.blocks import build_model, deploy
    from archsearch.measure import (
        count_params,
        forward_peak_mb,
        latency_ms,
        select_device,
        train_step_ms,
        weights_bytes,
    )
    from archsearch.measure.memory import CPU_METHOD, CUDA_METHOD

    start = time.perf_counter()
    seq_len = int(task.meta_features.get("seq_len") or 1)
    lengths = scaling_lengths(seq_len)
    try:
        device = select_device(str(task.constraints.get("device") or "auto"))
    except RuntimeError:
        device = torch.device("cpu")
    picks = best_per_family(trials, task.metric)
    results: dict[str, dict[str, Any]] = {
        t.family: {"family": t.family, "trial": t.number, "latency_ms": {}, "memory_mb": {}}
        for t in picks}
    stopped: set[str] = set()
    skipped = False
    for length in lengths:  # every family at a length before any at the next
        for trial in picks:
            row = results[trial.family]
            if trial.family in stopped:
                continue
            if time.perf_counter() - start > budget_s:
                skipped = True
                break
            try:
                io = _model_io(task, length)
                built = build_model(ArchConfig(trial.family, trial.config["model"]), io).eval()
                model, run_on = deploy(built, device)  # an int8 copy runs on the CPU
                x = torch.randn(1, length, io.n_features, device=run_on)
                tick = time.perf_counter()
                median, _ = latency_ms(model, x, warmup=1, repeats=REPEATS)
                row["latency_ms"][length] = median
                row["memory_mb"][length] = forward_peak_mb(model, x)[0]
                row.setdefault("params", count_params(model))
                row["int8_on_cpu"] = run_on != device
                row.setdefault("weights_mb", weights_bytes(model) / 2**20)
                if length == min(seq_len, MAX_LENGTH):  # training runs on the float model
                    row["train_step_ms"] = train_step_ms(built.to(device), x.shape[-1], length,
                                                         TRAIN_BATCH, device, warmup=1,
                                                         repeats=REPEATS)[0]
                if (time.perf_counter() - tick) / (REPEATS + 2) > SLOW_FORWARD_S:
                    stopped.add(trial.family)
            except Exception as exc:  # noqa: BLE001  (a config that no longer builds: say so)
                row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                stopped.add(trial.family)
        if skipped:
            break
    equal_size_length = min(seq_len, EQUAL_SIZE_MAX_LENGTH)
    equal_size = _equal_size(task, equal_size_length, device)
    notes = []
    if skipped:
        notes.append(f"stopped at the {budget_s:g} s time budget; longer lengths not measured")
    if stopped - {f for f, r in results.items() if "error" in r}:
        notes.append("a family whose forward took over "
                     f"{SLOW_FORWARD_S:g} s was not timed at longer lengths")
    return ScalingTable(lengths, seq_len, [ScalingRow(**r) for r in results.values()],
                        device.type, torch.get_num_threads(),
                        CUDA_METHOD if device.type == "cuda" else CPU_METHOD,
                        round(time.perf_counter() - start, 2), "; ".join(notes), equal_size,
                        equal_size_length)


def _equal_size(task: TaskRecord, length: int, device: Any) -> dict[str, dict[str, Any]]:
    """One training step of each model of :data:`EQUAL_SIZE_PAIR` at ``length``."""
    from archsearch.blocks import build_model
    from archsearch.measure import count_params, train_step_ms

    io = _model_io(task, length)
    out: dict[str, dict[str, Any]] = {}
    for family, hparams in EQUAL_SIZE_PAIR:
        try:
            model = build_model(ArchConfig(family, hparams), io).to(device)
            out[family] = {"params": count_params(model), "hparams": hparams,
                           "train_step_ms": train_step_ms(model, io.n_features, length,
                                                          TRAIN_BATCH, device, warmup=1,
                                                          repeats=REPEATS)[0]}
        except Exception as exc:  # noqa: BLE001  (a measurement that fails is reported, not fatal)
            out[family] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
    return out


def cached_scaling(report_dir: Path, task: TaskRecord,
                   trials: Sequence[TrialRecord]) -> ScalingTable:
    """The table cached beside the report when it measured the same trials, else measured
    now (and cached)."""
    cache = report_dir / CACHE_FILE
    wanted = sorted([t.family, t.number]
                    for t in best_per_family(trials, task.metric))
    if cache.is_file():
        try:
            table = ScalingTable.from_dict(json.loads(cache.read_text(encoding="utf-8")))
            if table.key() == wanted and table.equal_size_length is not None:
                return table
        except (ValueError, KeyError, TypeError):
            pass  # an unreadable cache is measured again
    table = measure_scaling(task, trials)
    report_dir.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(table.to_dict(), indent=1), encoding="utf-8")
    return table
