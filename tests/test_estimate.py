"""Cost estimates (measure/estimate.py) against measurement, family by family.

Parameters must be exact. Memory is an upper-bound style estimate of the dominant terms, held
to within ESTIMATE_FACTORS of what is measured at two lengths (so that the growth in T is
checked too): the forward of one sequence against ``forward_peak_mb``, and a training step at
batch 4 of a padded batch (forward, backward, AdamW) against the live-tensor peak of that step
plus the weights. Tiny models: the whole file runs in well under a minute on CPU.
"""

from __future__ import annotations

import pytest
import torch

from archsearch.blocks import FAMILIES, build_model
from archsearch.measure import count_params, forward_peak_mb, weights_bytes
from archsearch.measure.estimate import estimate_cost
from archsearch.measure.memory import LiveTensorPeak
from archsearch.types import ArchConfig, ModelIO, TaskKind

ESTIMATE_FACTORS = (0.5, 3.0)  # estimate / measured
LENGTHS = (64, 256)
BATCH = 4

ENCODER = dict(n_heads=2, ff_mult=2, norm="pre", moe_experts=0, moe_top_k=1)
# One small configuration per family of the default space (ssm twice: its two kinds).
CONFIGS = {
    "rnn": ("rnn", dict(n_layers=2)),
    "lstm": ("lstm", dict(n_layers=1, bidirectional=False)),
    "gru": ("gru", dict(n_layers=2, bidirectional=True)),
    "transformer": ("transformer", dict(n_layers=2, pos_encoding="learned", **ENCODER)),
    "tf_enc_rnn_dec": ("tf_enc_rnn_dec", dict(enc_layers=1, pos_encoding="rotary",
                                              dec_layers=1, **ENCODER)),
    "attn_rnn": ("attn_rnn", dict(cell="lstm", n_layers=1, n_heads=2, window=16)),
    "rnn_then_tf": ("rnn_then_tf", dict(cell="gru", rnn_layers=1, bidirectional=False,
                                        tf_layers=1, **{**ENCODER, "moe_experts": 4})),
    "linear_attention": ("linear_attention", dict(n_layers=1, n_heads=2, ff_mult=2,
                                                  pos_encoding="sinusoidal")),
    "ssm_s4d": ("ssm", dict(kind="s4d", n_layers=2, d_state=8)),
    "ssm_selective": ("ssm", dict(kind="selective", n_layers=1, d_state=8)),
    "tcn": ("tcn", dict(n_layers=3, kernel_size=3)),
    "fcn": ("fcn", dict(width_mult=2)),
    "resnet": ("resnet", dict(n_blocks=2)),
    "inception": ("inception", dict(n_modules=3, kernel_size=20)),
    "lite": ("lite", dict(kernel_size=20)),
    "rocket": ("rocket", dict(n_features=840, max_dilations=8)),
}
# Causal, with dropout: the masked attention (dropout on its output, never its weights, so a
# training step stays on the fused kernel), causal linear attention (chunked) and a causal
# convolution.
CAUSAL = ("transformer", "tf_enc_rnn_dec", "attn_rnn", "rnn_then_tf", "linear_attention",
          "lite", "rocket")


def _arch(name: str, causal: bool, dropout: float) -> ArchConfig:
    family, own = CONFIGS[name]
    if causal and own.get("bidirectional"):
        own = {**own, "bidirectional": False}
    pooling = "last" if FAMILIES[family].readout == "ridge" else "mean"  # its only pooling
    return ArchConfig(family, {"d_model": 32, "dropout": dropout, "pooling": pooling, **own})


def _io(causal: bool) -> ModelIO:
    return ModelIO(n_features=3, task=TaskKind.CLASSIFICATION, n_outputs=2, max_len=1024,
                   causal=causal)


def _measured_train_step_mb(model: torch.nn.Module, seq_len: int, batch: int = BATCH,
                            padded: bool = True) -> float:
    """Weights + the live-tensor peak of one training step on a batch (padded: its second
    sequence 3 steps short, its third half the length; of a forward, for a ridge readout:
    nothing trains by gradient)."""
    model.train()
    x = torch.randn(batch, seq_len, 3)
    lengths = torch.full((batch,), seq_len)
    if padded:
        lengths[1:3] = torch.tensor([seq_len - 3, seq_len // 2])
    if model.fits_in_closed_form:
        with LiveTensorPeak() as tracker, torch.no_grad():
            model(x, lengths)
    else:
        optimizer = torch.optim.AdamW(model.parameters())
        with LiveTensorPeak() as tracker:
            model(x, lengths).sum().backward()
            optimizer.step()
    return (weights_bytes(model) + tracker.peak) / 2**20


def _within(estimate: float, measured: float) -> bool:
    low, high = ESTIMATE_FACTORS
    return low * measured <= estimate <= high * measured


def test_every_family_has_an_estimate() -> None:
    assert {family for family, _ in CONFIGS.values()} == set(FAMILIES)


@pytest.mark.parametrize(("name", "causal", "dropout"),
                         [(name, False, 0.0) for name in CONFIGS]
                         + [(name, True, 0.1) for name in CAUSAL])
def test_estimates_match_measurement(name: str, causal: bool, dropout: float) -> None:
    torch.manual_seed(0)
    arch, io = _arch(name, causal, dropout), _io(causal)
    model = build_model(arch, io)
    for seq_len in LENGTHS:
        estimate = estimate_cost(arch, io, seq_len, BATCH)
        assert estimate.params == count_params(model)
        model.eval()
        forward, _ = forward_peak_mb(model, torch.randn(1, seq_len, 3))
        train = _measured_train_step_mb(model, seq_len)
        print(f"{name} causal={causal} T={seq_len}: forward {estimate.forward_mb:.2f} / "
              f"{forward:.2f} MB, train step {estimate.train_step_mb:.2f} / {train:.2f} MB")
        assert _within(estimate.forward_mb, forward), (estimate.forward_mb, forward)
        assert _within(estimate.train_step_mb, train), (estimate.train_step_mb, train)


def test_an_unpadded_window_is_one_mask_for_the_whole_batch() -> None:
    # attn_rnn's window needs a T x T mask even over an unpadded batch: one that broadcasts,
    # not one per sequence (at batch 16 and 1024 steps 5 MB of masks, not 84).
    torch.manual_seed(0)
    arch, io = _arch("attn_rnn", True, 0.0), _io(True)
    model = build_model(arch, io)
    seq_len, batch = 1024, 16
    unpadded = _measured_train_step_mb(model, seq_len, batch, padded=False)
    padded = _measured_train_step_mb(model, seq_len, batch, padded=True)
    estimate = estimate_cost(arch, io, seq_len, batch, padded=False)
    print(f"unpadded {unpadded:.1f} MB (estimate {estimate.train_step_mb:.1f}), "
          f"padded {padded:.1f} MB")
    assert unpadded < 0.7 * padded  # B masks would make it the larger
    assert _within(estimate.train_step_mb, unpadded), (estimate.train_step_mb, unpadded)


def test_estimates_allocate_nothing_and_grow_with_t_squared_only_for_softmax_attention():
    io = _io(False)
    transformer, tcn = _arch("transformer", False, 0.1), _arch("tcn", False, 0.1)
    with LiveTensorPeak() as tracker:
        long = estimate_cost(transformer, io, 20_000, 64, eval_batch_size=256)
    assert tracker.peak == 0  # the meta device: no storage
    short = estimate_cost(transformer, io, 2_000, 64, eval_batch_size=256)
    # A padded batch: the attention's T x T terms dominate, so 10x the steps is ~100x.
    assert long.train_step_mb > 80 * short.train_step_mb
    assert long.eval_mb > 80 * short.eval_mb and long.run_mb > 1e5  # hundreds of gigabytes
    # Unpadded, the fused attention keeps no T x T (dropout never touches the attention
    # weights): linear in T, as a convolution.
    for arch, padded in ((transformer, False), (tcn, True)):
        far, near = (estimate_cost(arch, io, t, 64, padded=padded) for t in (20_000, 2_000))
        assert 9 < far.train_step_mb / near.train_step_mb < 11


@pytest.mark.parametrize("name", ["transformer", "tf_enc_rnn_dec", "rnn_then_tf"])
def test_dropout_keeps_a_training_step_on_the_fused_attention(name: str) -> None:
    # Dropping attention weights would send PyTorch's CPU attention down its math path, which
    # holds heads x T x T per sequence: 4x the steps would then cost ~16x the memory.
    torch.manual_seed(0)
    model = build_model(_arch(name, False, 0.1), _io(False)).train()
    peaks = []
    for seq_len in (256, 1024):
        with LiveTensorPeak() as tracker:
            model(torch.randn(BATCH, seq_len, 3)).sum().backward()
        peaks.append(tracker.peak)
    assert peaks[1] < 6 * peaks[0], peaks
