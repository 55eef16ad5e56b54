"""Benchmark every sequence family: cost against sequence length, on this machine.

    python benchmarks/blocks.py [--quick] [--threads N] [--batch B] [--out DIR]

Lengths 64..4096 (``--quick``: 64..1024 and fewer repeats). Every family is built at the same
width (d_model 64), causal (so the streaming families can stream), untrained, on CPU. Per family
and length: parameters, FLOPs, training step time (forward, backward, AdamW at batch B),
inference latency at batch 1 (median and p95) and at batch B (median), step-mode latency per
token (batch 1, families that stream) and peak memory of one batch-1 forward (the method is
printed). Then five checks measured in the same run:

- ssm_scan_speedup_T1024: the selective SSM's parallel path (chunked scan) against its own
  step-by-step path over the same 1024 tokens, both on CPU, timed interleaved (so that both see
  the same machine load), with the max abs difference of their outputs. Target >= 10. The
  kernel-only ratio (chunked scan against a plain loop over the same precomputed coefficients,
  mamba-minimal's reference scan) is reported beside it.
- linear_vs_softmax_memory_T4096: peak forward memory of linear attention over softmax attention
  at equal width and depth, softmax computed as written, softmax(Q K^T / sqrt(d)) V (the
  materialised T x T matrix of the "vanilla Transformer" in the S4 paper's table). Target
  <= 0.1. The ratio against PyTorch's fused SDPA kernel, which never materialises T x T, is
  reported beside it.
- lstm_vs_transformer_train_step at T = 64, 256, 1024, at (near) equal parameter count, the
  two timed in turn.
- attention_dropout_train_step_T1024: the transformer's training step with dropout 0.1 over the
  same model without dropout, timed in turn. Dropout applies to sublayer outputs, never to the
  attention weights, so the step stays on PyTorch's fused attention (dropping the weights takes
  the math path on CPU, which holds heads x T x T). Target <= 1.3.
- two_threads_train_step_T1024: every family's training step on two threads over one, timed
  in turn: what the lone last fold of a cross-validation gains from the CPUs the other folds
  leave idle. No target; it needs the machine quiet.

``--checks-only`` measures the checks alone (minutes), without the per-family rows and plot.

The last line printed is one JSON object; the same data goes to DIR/blocks.json and a plot of
cost against length per family to DIR/blocks.svg (hand-written SVG, no plotting dependency).
Threads are pinned for every timing and recorded, and so is the 1-minute load average at the
start and the end: on a shared machine other work slows the large multi-threaded operations of
the parallel paths far more than the small ones of a step loop.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from archsearch.blocks import build_model  # noqa: E402
from archsearch.blocks.ssm_selective import linear_scan, loop_scan  # noqa: E402
from archsearch.measure import (  # noqa: E402
    count_flops,
    count_params,
    fixed_threads,
    forward_peak_mb,
    latency_ms,
    model_size_mb,
    step_latency_ms,
    summarise,
    time_interleaved,
    train_step_ms,
)
from archsearch.types import ArchConfig, ModelIO, TaskKind  # noqa: E402

D_MODEL = 64
N_FEATURES = 2
CPU = torch.device("cpu")

# label -> (family, hparams). lstm and transformer are the equal-parameter pair of the check.
FAMILIES: dict[str, tuple[str, dict[str, Any]]] = {
    "rnn": ("rnn", {"n_layers": 2}),
    "lstm": ("lstm", {"n_layers": 2}),
    "gru": ("gru", {"n_layers": 2}),
    "transformer": ("transformer", {"n_layers": 2, "n_heads": 4, "ff_mult": 2}),
    "tf_enc_rnn_dec": ("tf_enc_rnn_dec", {"enc_layers": 1, "n_heads": 4, "ff_mult": 2,
                                          "dec_layers": 1}),
    "attn_rnn": ("attn_rnn", {"cell": "gru", "n_layers": 2, "n_heads": 4, "window": 64}),
    "rnn_then_tf": ("rnn_then_tf", {"cell": "lstm", "rnn_layers": 1, "tf_layers": 1,
                                    "n_heads": 4, "ff_mult": 2}),
    "linear_attention": ("linear_attention", {"n_layers": 2, "n_heads": 4, "ff_mult": 2}),
    "ssm-s4d": ("ssm", {"kind": "s4d", "n_layers": 2, "d_state": 16}),
    "ssm-selective": ("ssm", {"kind": "selective", "n_layers": 2, "d_state": 16}),
    "tcn": ("tcn", {"n_layers": 4, "kernel_size": 3}),
    "transformer-moe": ("transformer", {"n_layers": 2, "n_heads": 4, "ff_mult": 2,
                                        "moe_experts": 4, "moe_top_k": 1}),
    "lstm-int8": ("lstm", {"n_layers": 2, "quantize": "int8"}),
}


def build(label: str, seq_len: int, dropout: float = 0.0) -> torch.nn.Module:
    family, hparams = FAMILIES[label]
    torch.manual_seed(0)
    io = ModelIO(N_FEATURES, TaskKind.REGRESSION, 1, max_len=seq_len, causal=True)
    return build_model(ArchConfig(family, {"d_model": D_MODEL, "dropout": dropout, **hparams}),
                       io)


def deployed(model: torch.nn.Module) -> torch.nn.Module:
    from archsearch.blocks import inference_model

    return inference_model(model.eval())


def measure_row(label: str, seq_len: int, batch: int, repeats: int,
                step_ms: dict[str, tuple[float, float] | None]) -> dict[str, Any]:
    model = build(label, seq_len)
    infer_model = deployed(model)
    x1 = torch.randn(1, seq_len, N_FEATURES)
    xb = torch.randn(batch, seq_len, N_FEATURES)
    train_repeats = max(1, repeats // 2)
    train_p50, _ = train_step_ms(model, N_FEATURES, seq_len, batch, CPU, warmup=1,
                                 repeats=train_repeats)
    infer_p50, infer_p95 = latency_ms(infer_model, x1, warmup=2, repeats=repeats)
    batch_p50, _ = latency_ms(infer_model, xb, warmup=1, repeats=max(1, repeats // 2))
    if label not in step_ms:  # per token; the state is O(1) (O(window) for attn_rnn)
        step_ms[label] = (step_latency_ms(infer_model, N_FEATURES, CPU, tokens=32, repeats=3)
                          if infer_model.can_step else None)
    memory_mb, _ = forward_peak_mb(infer_model, x1)
    step = step_ms[label]
    return {
        "family": label,
        "seq_len": seq_len,
        "params": count_params(model),
        "flops": count_flops(model.eval(), x1),
        "train_step_ms": round(train_p50, 3),
        "infer_ms_p50": round(infer_p50, 3),
        "infer_ms_p95": round(infer_p95, 3),
        f"infer_ms_p50_batch{batch}": round(batch_p50, 3),
        "step_ms": None if step is None else round(step[0], 4),
        "peak_memory_mb": round(memory_mb, 3),
        "size_mb": round(model_size_mb(infer_model), 4),
    }


def ssm_scan_check(repeats: int) -> dict[str, Any]:
    """Selective SSM at T=1024, batch 1: parallel (chunked) path vs its step-by-step path."""
    T = 1024
    block = build("ssm-selective", T).eval().block
    h = torch.randn(1, T, D_MODEL)
    with torch.no_grad():
        parallel = block(h, torch.tensor([T]))

        def stream() -> torch.Tensor:
            state = block.init_state(1, CPU)
            outs = []
            for t in range(T):
                y, state = block.step(h[:, t], state)
                outs.append(y)
            return torch.stack(outs, 1)

        diff = (stream() - parallel).abs().max().item()
        # Interleaved: on a shared machine the load drifts within seconds, and the ratio must
        # compare the two paths under the same load.
        par_times, loop_times = time_interleaved(
            [lambda: block(h, torch.tensor([T])), stream], CPU, 1, repeats)
        par_ms, loop_ms = summarise(par_times)[0], summarise(loop_times)[0]
        # Kernel only: the same recurrence on precomputed coefficients (d = 2 * D, n = 16).
        a = torch.rand(1, T, 2 * D_MODEL, 16) * 0.5 + 0.5
        b = torch.randn(1, T, 2 * D_MODEL, 16)
        kernel_diff = (linear_scan(a, b) - loop_scan(a, b)).abs().max().item()
        chunk_times, ref_times = time_interleaved(
            [lambda: linear_scan(a, b), lambda: loop_scan(a, b)], CPU, 2, repeats)
        chunk_ms, ref_ms = summarise(chunk_times)[0], summarise(ref_times)[0]
    return {
        "ssm_scan_speedup_T1024": round(loop_ms / par_ms, 2),
        "ssm_scan_T1024": {"parallel_ms": round(par_ms, 3), "step_loop_ms": round(loop_ms, 3),
                           "max_abs_diff": diff, "equal_1e-4": diff <= 1e-4,
                           "target": ">= 10", "met": loop_ms / par_ms >= 10},
        "ssm_scan_kernel_speedup_T1024": round(ref_ms / chunk_ms, 2),
        "ssm_scan_kernel_T1024": {"chunked_ms": round(chunk_ms, 3), "loop_ms": round(ref_ms, 3),
                                  "max_abs_diff": kernel_diff},
    }


def memory_check() -> dict[str, Any]:
    """Peak forward memory at T=4096, batch 1: linear attention vs softmax attention."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    T = 4096
    x = torch.randn(1, T, N_FEATURES)
    linear = build("linear_attention", T).eval()
    softmax = build("transformer", T).eval()
    linear_mb, method = forward_peak_mb(linear, x)
    with sdpa_kernel(SDPBackend.MATH):
        math_mb, _ = forward_peak_mb(softmax, x)
    fused_mb, _ = forward_peak_mb(softmax, x)
    ratio = linear_mb / math_mb
    return {
        "linear_vs_softmax_memory_T4096": round(ratio, 4),
        "memory_T4096": {
            "linear_attention_mb": round(linear_mb, 2),
            "softmax_materialised_mb": round(math_mb, 2),
            "softmax_fused_sdpa_mb": round(fused_mb, 2),
            "linear_vs_softmax_fused_sdpa": round(linear_mb / fused_mb, 3),
            "params": {"linear_attention": count_params(linear),
                       "transformer": count_params(softmax)},
            "method": method, "target": "<= 0.1", "met": ratio <= 0.1,
        },
    }


def train_steps_in_turn(models: dict[str, torch.nn.Module], seq_len: int, batch: int,
                        repeats: int, device: torch.device = CPU) -> list[float]:
    """Median training step (ms) of each model, the models timed in turn (as the SSM check)
    so that all see the same machine load."""
    samples: dict[str, list[float]] = {label: [] for label in models}
    for _ in range(repeats):
        for label, model in models.items():
            samples[label].append(train_step_ms(model, N_FEATURES, seq_len, batch, device,
                                                warmup=1, repeats=1)[0])
    return [summarise(samples[label])[0] for label in models]


def lstm_vs_transformer(batch: int, repeats: int,
                        device: torch.device = CPU) -> dict[str, Any]:
    """Training step of the equal-size pair at T = 64, 256, 1024, the two timed in turn (as
    the SSM check) rather than taken from rows measured minutes apart. On CUDA the step runs
    in bf16 autocast, as trials train there."""
    out: dict[str, Any] = {"device": device.type}
    for T in (64, 256, 1024):
        models = {label: build(label, T).to(device) for label in ("lstm", "transformer")}
        lstm_ms, tf_ms = train_steps_in_turn(models, T, batch, repeats, device)
        out[f"T{T}"] = {
            "lstm_ms": round(lstm_ms, 3), "transformer_ms": round(tf_ms, 3),
            "transformer_speedup": round(lstm_ms / tf_ms, 3),
            "params": {label: count_params(model) for label, model in models.items()},
        }
    out["claim"] = "seed: Transformers train 5-10x faster than RNNs at equal parameter count"
    return out


def attention_dropout_check(batch: int, repeats: int) -> dict[str, Any]:
    T = 1024
    models = {f"dropout {p}": build("transformer", T, p) for p in (0.1, 0.0)}
    with_dropout, without = train_steps_in_turn(models, T, batch, repeats)
    ratio = with_dropout / without
    return {"attention_dropout_train_step_T1024": {
        "dropout_ms": round(with_dropout, 3), "no_dropout_ms": round(without, 3),
        "ratio": round(ratio, 3), "target": "<= 1.3", "met": ratio <= 1.3}}


def two_threads_check(batch: int, repeats: int) -> dict[str, Any]:
    """Each family's training step at T = 1024 on two threads over one, the two timed in turn:
    how much faster the lone last fold of a cross-validation trains on the CPUs the other folds
    leave idle (``fold_cpus`` in archsearch/search/selection.py) than it would alone on one."""
    T = 1024
    out: dict[str, Any] = {}
    for label in FAMILIES:
        model = build(label, T)
        samples: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(repeats):
            for threads, times in samples.items():
                with fixed_threads(threads):
                    times.append(train_step_ms(model, N_FEATURES, T, batch, CPU, warmup=1,
                                               repeats=1)[0])
        one, two = (summarise(times)[0] for times in samples.values())
        out[label] = {"one_thread_ms": round(one, 3), "two_threads_ms": round(two, 3),
                      "speedup": round(one / two, 3)}
    speedups = sorted(row["speedup"] for row in out.values())
    return {"two_threads_train_step_T1024": {
        **out, "median_speedup": speedups[len(speedups) // 2],
        "note": "a lone fold on two CPUs against one: 1 = no gain; it needs the 2 cores quiet"}}


COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939"]


def write_svg(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Three log-log panels (train step, inference, peak memory) against sequence length."""
    panels = [("train_step_ms", "training step (ms)"), ("infer_ms_p50", "inference, batch 1 (ms)"),
              ("peak_memory_mb", "peak memory, batch 1 (MB)")]
    labels = list(dict.fromkeys(r["family"] for r in rows))
    lengths = sorted({r["seq_len"] for r in rows})
    W, H, pad_l, pad_b, pad_t, gap = 330, 260, 58, 40, 30, 30
    legend_w = 150
    total_w = pad_l + len(panels) * (W + gap) + legend_w
    total_h = pad_t + H + pad_b + 20
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{total_h}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect width="{total_w}" height="{total_h}" fill="white"/>',
             f'<text x="{pad_l}" y="16" font-size="13">{html.escape(title)}</text>']
    lx0, lx1 = math.log10(lengths[0]), math.log10(lengths[-1])
    for p, (key, name) in enumerate(panels):
        x0 = pad_l + p * (W + gap)
        values = [r[key] for r in rows if r[key]]
        ly0 = math.floor(math.log10(min(values)))
        ly1 = math.ceil(math.log10(max(values)))
        ly1 = ly1 if ly1 > ly0 else ly0 + 1

        def px(v: float, x0: float = x0) -> float:
            return x0 + (math.log10(v) - lx0) / max(lx1 - lx0, 1e-9) * W

        def py(v: float, ly0: int = ly0, ly1: int = ly1) -> float:
            return pad_t + H - (math.log10(v) - ly0) / (ly1 - ly0) * H

        parts.append(f'<rect x="{x0}" y="{pad_t}" width="{W}" height="{H}" fill="none" '
                     'stroke="#999"/>')
        parts.append(f'<text x="{x0 + W / 2}" y="{pad_t - 6}" text-anchor="middle">'
                     f'{html.escape(name)}</text>')
        for e in range(ly0, ly1 + 1):
            y = py(10.0 ** e)
            parts.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x0 + W}" y2="{y:.1f}" '
                         'stroke="#eee"/>')
            parts.append(f'<text x="{x0 - 4}" y="{y + 4:.1f}" text-anchor="end">'
                         f'{10.0 ** e:g}</text>')
        for T in lengths:
            parts.append(f'<text x="{px(T):.1f}" y="{pad_t + H + 14}" text-anchor="middle">'
                         f'{T}</text>')
        parts.append(f'<text x="{x0 + W / 2}" y="{pad_t + H + 30}" text-anchor="middle">'
                     'sequence length</text>')
        for i, label in enumerate(labels):
            pts = [(r["seq_len"], r[key]) for r in rows if r["family"] == label and r[key]]
            coords = " ".join(f"{px(t):.1f},{py(v):.1f}" for t, v in pts)
            colour = COLOURS[i % len(COLOURS)]
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" '
                         'stroke-width="1.6"/>')
            parts.extend(f'<circle cx="{px(t):.1f}" cy="{py(v):.1f}" r="2.2" fill="{colour}"/>'
                         for t, v in pts)
    lx = pad_l + len(panels) * (W + gap)
    for i, label in enumerate(labels):
        y = pad_t + 10 + i * 16
        colour = COLOURS[i % len(COLOURS)]
        parts.append(f'<line x1="{lx}" y1="{y}" x2="{lx + 18}" y2="{y}" stroke="{colour}" '
                     'stroke-width="2"/>')
        parts.append(f'<text x="{lx + 22}" y="{y + 4}">{html.escape(label)}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="lengths 64..1024, fewer repeats")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="intra-op threads pinned for every timing (default: torch's)")
    parser.add_argument("--batch", type=int, default=8, help="batch of the training step")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent / "out")
    parser.add_argument("--checks-only", action="store_true",
                        help="the checks alone, without the per-family rows and plot")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    load_start = os.getloadavg()[0]  # other work on the machine skews every timing: record it
    lengths = [] if args.checks_only else [64, 256, 1024] if args.quick else [64, 256, 1024, 4096]
    repeats = 4 if args.quick else 10
    rows: list[dict[str, Any]] = []
    step_ms: dict[str, tuple[float, float] | None] = {}
    with fixed_threads(args.threads) as threads:
        for T in lengths:
            for label in FAMILIES:
                t0 = time.perf_counter()
                rows.append(measure_row(label, T, args.batch, repeats, step_ms))
                print(f"{label:>18} T={T:<5} {time.perf_counter() - t0:6.1f}s  "
                      f"{json.dumps({k: v for k, v in rows[-1].items() if k != 'family'})}",
                      file=sys.stderr, flush=True)
        checks = {**ssm_scan_check(6 if args.quick else 10), **memory_check(),
                  "lstm_vs_transformer_train_step": lstm_vs_transformer(args.batch, repeats),
                  **attention_dropout_check(args.batch, repeats),
                  **two_threads_check(args.batch, repeats)}
    args.out.mkdir(parents=True, exist_ok=True)
    svg_path = args.out / "blocks.svg"
    title = (f"archsearch blocks: d_model {D_MODEL}, causal, CPU, {threads} threads, "
             f"train batch {args.batch}")
    if rows:
        write_svg(rows, svg_path, title)
    result = {
        "benchmark": "blocks",
        "quick": args.quick,
        "checks_only": args.checks_only,
        "device": "cpu",
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "load_avg_1min": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)},
        "d_model": D_MODEL,
        "train_batch": args.batch,
        "causal": True,
        "memory_method": "CPU: weights + peak of live tensor storages across ATen ops "
                         "(TorchDispatchMode), one batch-1 forward",
        "notes": [
            "train_step_ms: median of forward + loss + backward + AdamW step at train_batch.",
            "infer_ms_p50/p95 at batch 1 after warm-up; step_ms: per token, batch 1, streaming "
            "path, measured once per family (its state does not grow with the length).",
            "lstm-int8 is trained in float; its latency, memory and size are of the int8 copy.",
            "flops: FlopCounterMode plus analytic fused RNN and FFT counts.",
        ],
        "rows": rows,
        "checks": checks,
        "plot": str(svg_path) if rows else None,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    (args.out / "blocks.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
