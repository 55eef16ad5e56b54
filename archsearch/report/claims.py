"""The seed guide's claims, checked on this task's measurements and this hardware.

Three kinds of evidence, each already measured elsewhere; nothing here trains or times:

- every soft rule of ``rules.yaml`` that fired for this task is a claim that the families it
  favours do best here; the task's trials say whether one of them reached the best score;
- "a Transformer trains 5-10x faster than an RNN at equal parameter count": the equal-size pair
  that :mod:`archsearch.report.scaling` timed at this task's length;
- "attention memory grows as O(n^2)" and "linear attention and SSMs scale linearly": the growth
  exponents of the scaling table (cost ~ length^k).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from archsearch.recommend import facts_for, load_rules
from archsearch.report.scaling import ScalingTable, best_per_family
from archsearch.store import TaskRecord, TrialRecord

HELD, PARTLY, NOT_HELD, UNTESTED = "held", "partly held", "did not hold", "not tested"
SPEEDUP_CLAIMED = 5.0  # the low end of the seed's "5-10x"
QUADRATIC_K, LINEAR_K = 1.5, 1.3  # memory exponent that counts as quadratic; latency as linear
LINEAR_FAMILIES = ("linear_attention", "ssm")
# Growth claims are about long sequences: below this length fixed costs (weights, buffers, call
# overhead) dominate and an exponent says nothing about O(n) or O(n^2); three lengths at least.
MIN_GROWTH_LENGTH, MIN_GROWTH_POINTS = 512, 3


@dataclass(frozen=True)
class Claim:
    claim: str
    verdict: str  # HELD, PARTLY, NOT_HELD or UNTESTED
    evidence: str


def check_claims(task: TaskRecord, trials: Sequence[TrialRecord],
                 scaling: ScalingTable | None) -> list[Claim]:
    """The seed's claims that this task's evidence can speak to, each with its verdict."""
    claims = _rule_claims(task, trials)
    if scaling is not None:
        claims.append(_speed_claim(scaling))
        claims.append(_quadratic_memory_claim(scaling))
        claims.extend(_linear_claims(scaling))
    return claims


def _rule_claims(task: TaskRecord, trials: Sequence[TrialRecord]) -> list[Claim]:
    best = {t.family: t for t in best_per_family(trials, task.metric)}
    facts = facts_for(task.meta_features, task.task_kind, task.constraints)
    claims = []
    for rule in load_rules():
        favoured = sorted(f for f, w in rule.prior.items() if w > 1.0)
        if not favoured or not rule.fires(facts):
            continue
        text = f"Rule {rule.id}: {rule.says}"
        tried = [f for f in favoured if f in best]
        others = [f for f in best if f not in favoured]
        if not tried or not others:
            missing = "none of " + ", ".join(favoured) if not tried else "no other family"
            claims.append(Claim(text, UNTESTED, f"{missing} completed a trial on this task."))
            continue
        sign = task.metric.sign
        top_in = max(tried, key=lambda f: sign * best[f].val_score)
        top_out = max(others, key=lambda f: sign * best[f].val_score)
        a, b = best[top_in].val_score, best[top_out].val_score
        name = task.metric.name
        if sign * a >= sign * b:
            claims.append(Claim(text, HELD, f"{top_in} (favoured) reached validation {name} "
                                            f"{a:.4g}; the best other family, {top_out}, "
                                            f"{b:.4g}."))
        else:
            claims.append(Claim(text, NOT_HELD, f"{top_out} (not favoured) reached validation "
                                                f"{name} {b:.4g}; the best favoured family, "
                                                f"{top_in}, {a:.4g}."))
    return claims


def _speed_claim(scaling: ScalingTable) -> Claim:
    text = ("At equal parameter count a Transformer trains 5-10x faster than an RNN (here an "
            "LSTM).")
    lstm, tf = scaling.equal_size.get("lstm", {}), scaling.equal_size.get("transformer", {})
    if "train_step_ms" not in lstm or "train_step_ms" not in tf:
        why = lstm.get("error") or tf.get("error") or "the equal-size pair was not timed"
        return Claim(text, UNTESTED, why)
    speedup = lstm["train_step_ms"] / tf["train_step_ms"]
    length = scaling.equal_size_length
    at = (f"length {length}" if length == scaling.seq_len
          else f"length {length} (the task's {scaling.seq_len} steps, capped)")
    evidence = (f"One training step at {at} on {scaling.device} "
                f"({scaling.threads} threads): LSTM {lstm['train_step_ms']:.3g} ms "
                f"({lstm['params']} parameters), Transformer {tf['train_step_ms']:.3g} ms "
                f"({tf['params']} parameters): the Transformer is ")
    evidence += (f"{speedup:.2f}x faster." if speedup >= 1 else f"{1 / speedup:.2f}x slower.")
    verdict = HELD if speedup >= SPEEDUP_CLAIMED else PARTLY if speedup > 1 else NOT_HELD
    return Claim(text, verdict, evidence)


def _exponent_text(scaling: ScalingTable, family: str, kind: str) -> tuple[float | None, str]:
    row = next((r for r in scaling.rows if r.family == family), None)
    if row is None:
        return None, f"{family} completed no trial, so it was not measured"
    k = row.exponent(kind)
    values = row.latency_ms if kind == "latency" else row.memory_mb
    unit = "ms" if kind == "latency" else "MB"
    points = ", ".join(f"{n}: {v:.3g} {unit}" for n, v in sorted(values.items()))
    if len(values) < MIN_GROWTH_POINTS or max(values, default=0) < MIN_GROWTH_LENGTH:
        return None, (f"{family}: measured at too few or too short lengths to show growth "
                      f"({points or 'none'}; {MIN_GROWTH_POINTS} lengths up to "
                      f"{MIN_GROWTH_LENGTH} or more are needed)")
    if k is None or math.isnan(k):
        return None, f"{family}: no growth exponent could be fitted ({points})"
    return k, f"{family}: {kind} ~ length^{k:.2f} (by length, {points})"


def _quadratic_memory_claim(scaling: ScalingTable) -> Claim:
    text = ("Attention memory grows as O(n^2) in sequence length: cap the length or use linear "
            "attention / SSM blocks.")
    k, evidence = _exponent_text(scaling, "transformer", "memory")
    if k is None:
        return Claim(text, UNTESTED, evidence)
    evidence += (f", weights taken off, on {scaling.device} ({scaling.memory_method}). A fused "
                 "attention kernel never materialises the n x n matrix.")
    return Claim(text, HELD if k >= QUADRATIC_K else NOT_HELD, evidence)


def _linear_claims(scaling: ScalingTable) -> list[Claim]:
    claims = []
    for family in LINEAR_FAMILIES:
        k, evidence = _exponent_text(scaling, family, "latency")
        if k is None and not any(r.family == family for r in scaling.rows):
            continue  # the family is not in this search: nothing to say
        text = f"{family} scales linearly in sequence length (O(n), unlike softmax attention)."
        verdict = UNTESTED if k is None else HELD if k <= LINEAR_K else NOT_HELD
        claims.append(Claim(text, verdict, evidence))
    return claims
