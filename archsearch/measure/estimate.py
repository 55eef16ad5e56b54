"""Cost estimates before any allocation: parameters and peak memory of a configuration,
predicted from its hyperparameters and the data shape without building the model.

A trial measures the cost of the model it built (:func:`archsearch.measure.measure_cost`), but
building it and running one forward is already the allocation a long sequence makes fatal:
softmax attention over a padded batch of T steps holds T x T masks per sequence.
:func:`estimate_cost` answers first.

- **Parameters: exact.** The model is built on PyTorch's ``meta`` device, where tensors have
  shapes and no storage, so the count is the real model's whatever the family.
- **Peak memory: an upper-bound style sum of the dominant terms**, in float32 bytes:
  ``weights + B x T x per_step + quadratic``. ``per_step`` is a family's count of floats per
  sequence step live at the forward's peak (one layer's widest tensors plus the stream between
  layers), or, for a training step, the floats every layer keeps for the backward pass plus the
  backward's working set (one layer's widest tensors). A training step adds the gradients and
  AdamW's two moments (3 x the weights). ``quadratic`` is softmax attention's T x T terms, as
  PyTorch's ``scaled_dot_product_attention`` allocates them: without a mask (an unpadded
  sequence, or only the causal triangle) its fused kernels keep nothing of T x T; with a mask
  (a padded batch, attn_rnn's window) the bool mask (1 byte) and the float mask it becomes (4
  bytes) per attention, and per sequence when the batch is padded (an unpadded window's mask is
  one for the batch), after the mask's construction (an int64 T x T of offsets and bool T x
  T's). No attention drops its weights (blocks/transformer.py says why), so no
  training step takes PyTorch's math path, which would keep heads x T x T.

The per-family counts (:data:`_PROFILES`) are written from each block's forward and checked
against :func:`archsearch.measure.forward_peak_mb` and a measured training step at several
lengths (tests/test_estimate.py: within 0.5x-3x). Left out: scratch memory inside one fused
kernel (PyTorch's RNN and convolution workspaces, which the CPU measurement cannot see
either), the allocator's fragmentation and caching on CUDA, Python and framework overhead (the
process's baseline, a few hundred MB, not the configuration's), and int8 quantization (the
estimate is of the float model; the deployed int8 copy is smaller).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from archsearch.blocks import ModelHParams, build_model, parse_arch
from archsearch.blocks.rocket import KERNELS, slot_sizes
from archsearch.types import ArchConfig, ModelIO

MB = 2**20
FLOAT = 4  # bytes: estimates are of the float32 model (bf16 autocast on CUDA only lowers them)
# Bytes per T x T entry and sequence of one masked softmax attention: the bool mask and the
# float mask PyTorch turns it into.
_MASK_BYTES = 1 + FLOAT
# attention_mask() at its peak: the int64 offsets and two bool T x T (once, not per sequence)
# beside two bool masks per sequence.
_BUILD_SHARED_BYTES, _BUILD_BYTES = 10, 2
CHUNK = 64  # linear attention's chunk (blocks/linear_attention.py): scores are heads x T x 64


@dataclass(frozen=True)
class CostEstimate:
    """What :func:`estimate_cost` predicts for one configuration on one data shape (MiB)."""

    params: int  # exact: counted on the meta device
    weights_mb: float  # parameters and buffers, float32
    forward_mb: float  # one no-grad forward of one full-length sequence (batch 1), weights in
    train_step_mb: float  # one training step (forward, backward, AdamW) at batch_size; for a
    # ridge readout (nothing trains by gradient) one forward at batch_size
    train_batch_mb: float  # of train_step_mb, what grows with the batch (activations and
    # their gradients), not the weights, gradients and optimizer state held between steps
    eval_mb: float  # one no-grad forward at eval_batch_size (validation and test)
    batch_size: int
    eval_batch_size: int
    seq_len: int
    batch_coupled: bool  # BatchNorm: a training batch cannot run in chunks (SequenceModel)
    chunks: int = 1  # a training batch run in this many chunks: then train_step_mb and
    # train_batch_mb are of the largest chunk's step (archsearch.trial.preflight)

    @property
    def run_mb(self) -> float:
        """The most a trial's run needs at once: its training step or its evaluation."""
        return max(self.train_step_mb, self.eval_mb)


@dataclass(frozen=True)
class _Profile:
    """A family's dominant terms (see the module docstring).

    ``forward``/``train``: floats per step of each sequence; ``forward_shared``/
    ``train_shared``: floats per step that do not grow with the batch (S4D's kernel);
    ``attention_layers``: softmax attentions over T x T; ``windowed``: the
    attention is given a mask even over an unpadded sequence (attn_rnn's window).
    """

    forward: float
    train: float
    forward_shared: float = 0.0
    train_shared: float = 0.0
    attention_layers: int = 0
    windowed: bool = False


def _recurrent(d: int, layers: int, cell: str) -> tuple[float, float]:
    """(forward, train) floats per step of a fused RNN stack: the layers' outputs (d each) and,
    in training, every layer's gates (1, 3 or 4 x d for RNN, GRU, LSTM) kept for the backward
    through time, with their gradients."""
    gates = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    return 2.0 * layers * d, layers * (2 + 3 * gates) * d


def _encoder(d: int, layers: int, ff_mult: int, rotary: bool, moe_experts: int,
             ) -> tuple[float, float]:
    """(forward, train) floats per step of an encoder stack. Forward: one layer's widest part,
    the attention (qkv 3d, its output and projection; +4d rotated q and k) or the feed-forward
    (2 ff_mult d, +2d routed copies with experts). Train, per layer: norms, qkv, attention
    output, projection and residuals (11d) and the feed-forward's up and activation."""
    rot = 4 * d if rotary else 0
    moe = 2 * d + 2 * moe_experts if moe_experts else 0
    forward = max(6 * d + rot, 2 * ff_mult * d + 2 * d + moe)
    return forward, layers * (11 * d + 2 * ff_mult * d + rot + moe)


def _rnn_family(cell: str) -> Callable[[int, Any, bool], _Profile]:
    def profile(d: int, c: Any, causal: bool) -> _Profile:
        return _Profile(*_recurrent(d, c.n_layers, cell))

    return profile


def _transformer(d: int, c: Any, causal: bool) -> _Profile:
    fwd, train = _encoder(d, c.n_layers, c.ff_mult, c.pos_encoding == "rotary", c.moe_experts)
    return _Profile(fwd, train, attention_layers=c.n_layers)


def _tf_enc_rnn_dec(d: int, c: Any, causal: bool) -> _Profile:
    fwd, train = _encoder(d, c.enc_layers, c.ff_mult, c.pos_encoding == "rotary",
                          c.moe_experts)
    rnn_fwd, rnn_train = _recurrent(d, c.dec_layers, "lstm")
    return _Profile(max(fwd, rnn_fwd), train + rnn_train, attention_layers=c.enc_layers)


def _rnn_then_tf(d: int, c: Any, causal: bool) -> _Profile:
    fwd, train = _encoder(d, c.tf_layers, c.ff_mult, False, c.moe_experts)
    rnn_fwd, rnn_train = _recurrent(d, c.rnn_layers, c.cell)
    return _Profile(max(fwd, rnn_fwd), train + rnn_train, attention_layers=c.tf_layers)


def _attn_rnn(d: int, c: Any, causal: bool) -> _Profile:
    """Per layer: the RNN's states, then qkv (3d), the attention's output and projection. With
    a window the attention always has a mask, so T x T is materialised even unpadded, once for
    the batch (the window bounds what a step sees, not what the parallel path allocates)."""
    rnn_fwd, rnn_train = _recurrent(d, 1, c.cell)
    return _Profile(max(rnn_fwd, 6 * d), c.n_layers * (rnn_train + 7 * d),
                    attention_layers=c.n_layers, windowed=c.window > 0)


def _linear_attention(d: int, c: Any, causal: bool) -> _Profile:
    """An encoder stack plus the feature maps (2d per layer); causal, the chunked form adds
    heads x CHUNK scores per step (twice: the scores and their masked product) and the
    per-chunk summaries with their prefix sums (d x head size / CHUNK, three times)."""
    hs = d // c.n_heads
    chunked = 2 * c.n_heads * CHUNK + 3 * d * hs / CHUNK + 3 * d if causal else 0
    fwd, train = _encoder(d, c.n_layers, c.ff_mult, False, 0)
    return _Profile(fwd + 2 * d + chunked, train + c.n_layers * (2 * d + chunked))


def _ssm(d: int, c: Any, causal: bool) -> _Profile:
    """Selective: the scan's (T, d_inner, d_state) tensors (a, b, the chunked scan's local
    states and decays and their stacked copies: about 11 live at the peak, 14 kept in
    training) beside d_inner-wide projections. S4D: the FFT convolution over 2T (8d at the
    peak, 14d kept per layer) and the kernel's complex (d, d_state/2, T) powers and their
    exponential: 2 d d_state floats per step, once per layer, not per sequence."""
    if c.kind == "selective":
        di = c.expand * d
        return _Profile(11 * di * c.d_state + 6 * di,
                        c.n_layers * (14 * di * c.d_state + 10 * di))
    kernel = 2 * d * c.d_state
    return _Profile(8 * d, c.n_layers * 14 * d, forward_shared=kernel,
                    train_shared=c.n_layers * kernel)


def _tcn(d: int, c: Any, causal: bool) -> _Profile:
    """Each temporal block: two padded copies, two convolutions, their ReLUs, the residual."""
    return _Profile(8 * d, c.n_layers * 8 * d)


def _conv_block(c_in: float, c_out: float) -> float:
    """Floats per step of one ConvBlock: the masked and padded copies of its input (2 c_in),
    the convolution, BatchNorm and ReLU outputs (3 c_out)."""
    return 2 * c_in + 3 * c_out


def _fcn(d: int, c: Any, causal: bool) -> _Profile:
    blocks = [_conv_block(d, d), _conv_block(d, c.width_mult * d),
              _conv_block(c.width_mult * d, d)]
    return _Profile(max(blocks) + d, sum(blocks))


def _resnet(d: int, c: Any, causal: bool) -> _Profile:
    """Each residual block: three ConvBlocks, the shortcut (a 1x1 ConvBlock where the width
    changes), the sum and its ReLU."""
    first = max(1, d // 2) if c.n_blocks > 1 else d
    widths = (d, first, *[d] * (c.n_blocks - 1))
    pairs = list(zip(widths[:-1], widths[1:], strict=True))
    return _Profile(max(3 * c_in + 3 * c_out for c_in, c_out in pairs),
                    sum(3 * c_in + 16 * c_out for c_in, c_out in pairs))


def _inception(d: int, c: Any, causal: bool) -> _Profile:
    """Each module: the bottleneck and three branches (d/4 each, with their padded inputs),
    the max-pool branch, the concatenation, BatchNorm and ReLU (about 9d kept); a shortcut
    every three modules (4d)."""
    return _Profile(6 * d, c.n_modules * 9 * d + c.n_modules // 3 * 4 * d)


def _lite(d: int, c: Any, causal: bool) -> _Profile:
    """Three depthwise branches (d each, with padded inputs), their concatenation, BatchNorm
    and ReLU (3d each), then two separable convolutions (9d and 5d kept)."""
    return _Profile(10 * d, 6 * d + 9 * d + 14 * d)


def _rocket(d: int, c: Any, causal: bool) -> _Profile:
    """One slot at a time and no gradient (a ridge readout: a "training step" is a forward):
    the masked input (d), the slot's 84 gathered channels, padded, their convolutions and
    masked copy (4 x 84), the counted steps and the 84 n comparisons (bool). Causal, also the
    running shares (2 x 84 n) and every feature's running PPV and its standardised copy (2F).
    Non-causal the features are per sequence (F, not per step): left out."""
    sizes = slot_sizes(c)
    n, features = max(sizes), KERNELS * sum(sizes)
    slot = d + 4 * KERNELS + (KERNELS + KERNELS * n) / FLOAT
    forward = slot + (2 * KERNELS * n + 2 * features if causal else 0)
    return _Profile(forward, forward)


_PROFILES: dict[str, Callable[[int, Any, bool], _Profile]] = {
    "rnn": _rnn_family("rnn"), "lstm": _rnn_family("lstm"), "gru": _rnn_family("gru"),
    "transformer": _transformer, "tf_enc_rnn_dec": _tf_enc_rnn_dec, "attn_rnn": _attn_rnn,
    "rnn_then_tf": _rnn_then_tf, "linear_attention": _linear_attention, "ssm": _ssm,
    "tcn": _tcn, "fcn": _fcn, "resnet": _resnet, "inception": _inception, "lite": _lite,
    "rocket": _rocket,
}


def estimate_cost(arch: ArchConfig, io: ModelIO, seq_len: int, batch_size: int, *,
                  eval_batch_size: int | None = None, padded: bool = True) -> CostEstimate:
    """Predict ``arch``'s parameters and peak memory on sequences of ``seq_len`` steps without
    allocating any of it (raises :class:`SpaceError` on a configuration that cannot build).

    ``batch_size``: the training batch; ``eval_batch_size`` (default ``batch_size``): the batch
    of validation and test. ``padded``: whether batches hold sequences shorter than
    ``seq_len``; then softmax attention is given a padding mask of T x T per sequence (an
    upper bound when only some batches are ragged). The batch-1 forward is of one
    full-length sequence, as :func:`archsearch.measure.measure_cost` measures it."""
    shared, config = parse_arch(arch, io)
    if arch.family not in _PROFILES:
        raise NotImplementedError(f"no cost estimate for family '{arch.family}'")
    with torch.device("meta"):  # shapes without storage: nothing is allocated
        model = build_model(arch, io)
    params = sum(p.numel() for p in model.parameters())
    weights = (params + sum(b.numel() for b in model.buffers())) * FLOAT
    profile = _PROFILES[arch.family](shared.d_model, config, io.causal)
    eval_batch = eval_batch_size or batch_size
    common_fwd, common_train = _model_floats(shared, io)
    forward = weights + _forward_bytes(profile, common_fwd, 1, seq_len, padded=False)
    evaluation = weights + _forward_bytes(profile, common_fwd, eval_batch, seq_len, padded)
    if model.fits_in_closed_form:  # no backward, no optimizer: a forward (see _rocket)
        per_step, held = profile.train + common_fwd, weights
    else:  # + the backward's working set; weights, gradients, AdamW's two moments
        per_step, held = profile.train + common_train + profile.forward, 4 * weights
    batch_bytes = ((batch_size * per_step + profile.train_shared) * seq_len * FLOAT
                   + _train_attention_bytes(profile, batch_size, seq_len, padded))
    return CostEstimate(params=params, weights_mb=weights / MB, forward_mb=forward / MB,
                        train_step_mb=(held + batch_bytes) / MB, train_batch_mb=batch_bytes / MB,
                        eval_mb=evaluation / MB, batch_size=batch_size,
                        eval_batch_size=eval_batch, seq_len=seq_len,
                        batch_coupled=model.batch_coupled)


def _model_floats(shared: ModelHParams, io: ModelIO) -> tuple[float, float]:
    """(forward, train) floats per step of what surrounds the block: the input (F), the
    embedding (d), the final norm and the pooling's product (2d); in training also the input
    projection's gradient (d) and, with series_norm, the normalised input's copies (4F; as
    many again for window_anchor's shifted copies)."""
    d, f = shared.d_model, io.n_features
    norm = 4 * f * (shared.series_norm + (shared.window_anchor != "none"))
    return f + 3 * d + norm, f + 4 * d + norm


def _forward_bytes(p: _Profile, common: float, batch: int, seq_len: int, padded: bool) -> float:
    """Bytes of activations at a no-grad forward's peak (weights excluded)."""
    linear = (batch * (p.forward + common) + p.forward_shared) * seq_len * FLOAT
    if not p.attention_layers or not (padded or p.windowed):
        return linear  # no mask: PyTorch's fused attention keeps no T x T
    masks, square = _masks(batch, padded), seq_len * seq_len
    building = (_BUILD_SHARED_BYTES + _BUILD_BYTES * masks) * square
    return linear + max(building, masks * _MASK_BYTES * square)


def _masks(batch: int, padded: bool) -> int:
    """T x T masks an attention is given: one per sequence of a padded batch, else one (an
    unpadded window's, broadcast over the batch; blocks/transformer.py's attention_mask)."""
    return batch if padded else 1


def _train_attention_bytes(p: _Profile, batch: int, seq_len: int, padded: bool) -> float:
    """Bytes of softmax attention's T x T terms in a training step: per layer the masks (kept
    for the backward), or the mask's construction, whichever is larger."""
    if not p.attention_layers or not (padded or p.windowed):
        return 0.0
    masks, square = _masks(batch, padded), seq_len * seq_len
    kept = masks * p.attention_layers * _MASK_BYTES * square
    return max(kept, (_BUILD_SHARED_BYTES + _BUILD_BYTES * masks) * square)
