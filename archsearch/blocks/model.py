"""A full model: [per-series normalisation] -> input projection -> family block -> pooling ->
task head.

``series_norm`` z-normalises each series on its own (per channel, over its valid steps), the
standard preprocessing of time-series classification (the UCR archive ships its sets so): the
model learns shapes, not levels. It uses nothing but the series itself, so no other series or
split leaks into it, and it is part of the model, so the exported model applies it too. It
needs the whole series, so a causal (streaming) model cannot use it.

``window_anchor: last`` (forecasting) anchors each window at its last value, as NLinear (Zeng et
al. 2023) and RevIN (Kim et al. 2022) do: the model reads the window minus its last step and
forecasts the change from that step's value, which is added back. A trending series (CO2)
leaves the training range by the test split; the changes do not. The base is each target's own
input channel, converted to the target's units (``ModelIO.anchors``); subtracting the last step
needs the whole window, so a causal model cannot anchor.

Models whose block can step (:attr:`SequenceModel.can_step`) also stream: :meth:`step` takes one
input step and returns the prediction for the sequence seen so far (the pooling of the steps so
far: the last one, or the running mean), equal to ``forward`` on that prefix.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archsearch.blocks.base import SequenceBlock, lengths_to_mask
from archsearch.blocks.quantize import check_quantize
from archsearch.errors import SpaceError
from archsearch.hparams import ModelHParams
from archsearch.types import ModelIO, TaskKind

POOLINGS = ("last", "mean")
WINDOW_ANCHORS = ("none", "last")


class SequenceModel(nn.Module):
    def __init__(self, io: ModelIO, shared: ModelHParams, block: SequenceBlock) -> None:
        super().__init__()
        if shared.pooling not in POOLINGS:
            raise SpaceError(f"pooling must be one of {', '.join(POOLINGS)}, not "
                             f"'{shared.pooling}'.")
        check_quantize(shared.quantize)
        if shared.series_norm and io.causal:
            raise SpaceError("series_norm needs the whole series, so a causal (streaming) model "
                             "cannot use it; set series_norm: false.")
        self.io = io
        self.shared = shared
        self.anchored = _check_anchor(shared.window_anchor, io)
        if self.anchored:  # rebuilt from io, not stored: checkpoints stay weights only
            channels, scale, offset = zip(*io.anchors, strict=True)
            self.register_buffer("anchor_channels", torch.tensor(channels, dtype=torch.long),
                                 persistent=False)
            self.register_buffer("anchor_scale", torch.tensor(scale), persistent=False)
            self.register_buffer("anchor_offset", torch.tensor(offset), persistent=False)
        self.embed = nn.Linear(io.n_features, shared.d_model)
        self.block = block  # registered after the input projection: the parameters' order
        if self.fits_in_closed_form and shared.pooling != "last":
            raise SpaceError(f"family '{block.family}' gives every step the features of the "
                             "sequence so far, so its last step is the pooling; set "
                             "pooling: last.")
        width = block.out_dim
        # A ridge readout is fitted on the features as they are (and nothing trains by
        # gradient: the input projection stays a fixed random one).
        self.norm = nn.Identity() if self.fits_in_closed_form else nn.LayerNorm(width)
        self.head = nn.Linear(width, io.n_outputs)
        if self.fits_in_closed_form:
            self.requires_grad_(False)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, F), lengths: (B,) -> (B, n_outputs)."""
        out = self.head(self.features(x, lengths))  # (B, n_outputs)
        return out + self.anchor_base(x, lengths) if self.anchored else out

    def anchor_base(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, F) -> what an anchored model adds to its head's output (B, n_outputs):
        each target's value at the window's last step, for every step of the horizon."""
        last = _last_steps(x, lengths)[:, self.anchor_channels]  # (B, C)
        base = last * self.anchor_scale + self.anchor_offset  # (B, C) in target units
        return base.repeat(1, self.io.n_outputs // base.shape[1])  # horizon-major (B, H*C)

    def features(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, F), lengths: (B,) -> what the head reads: the pooled outputs (B, W), W =
        the block's ``out_dim``."""
        B, T, _ = x.shape
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long, device=x.device)
        x = self._normalised(x, lengths)  # (B, T, F)
        h = self.norm(self.block(self.embed(x), lengths))  # (B, T, W)
        if self.shared.pooling == "mean":
            mask = lengths_to_mask(lengths, T).unsqueeze(-1).to(h.dtype)  # (B, T, 1)
            return (h * mask).sum(1) / lengths.clamp(min=1).unsqueeze(-1).to(h.dtype)  # (B, W)
        return h[torch.arange(B, device=x.device), lengths - 1]  # (B, W)

    @property
    def fits_in_closed_form(self) -> bool:
        """True when the head is a ridge readout on fixed features (see the block's
        ``readout``): the trial fits it in closed form instead of training."""
        return self.block.readout == "ridge"

    @property
    def batch_coupled(self) -> bool:
        """True when, in training, a series' output depends on the others of its batch
        (BatchNorm's batch statistics): its batch cannot be split into chunks without changing
        what it learns."""
        return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.modules())

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor, lengths: torch.Tensor) -> None:
        """The block's data-dependent initialisation on training series x (N, T, F), lengths
        (N,), as the block will see them."""
        self.block.init_from_data(self.embed(self._normalised(x, lengths)), lengths)

    def _normalised(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, T, F) as the block reads it: each series z-normalised (``series_norm``), or
        each window minus its last step (``window_anchor: last``)."""
        if self.shared.series_norm:
            x = series_znorm(x, lengths)  # (B, T, F)
        if self.anchored:
            mask = lengths_to_mask(lengths, x.shape[1]).unsqueeze(-1).to(x.dtype)  # (B, T, 1)
            x = (x - _last_steps(x, lengths).unsqueeze(1)) * mask  # (B, T, F)
        return x

    @property
    def can_step(self) -> bool:
        """True when the block streams (its step path reproduces its forward)."""
        return self.block.can_step and not self.shared.series_norm and not self.anchored

    def init_state(self, batch: int, device: torch.device) -> Any:
        """(block state, running sum of normalised outputs (B, W), steps seen)."""
        total = torch.zeros(batch, self.block.out_dim, device=device)
        return self.block.init_state(batch, device), total, 0

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """x_t (B, F) -> prediction for the prefix so far (B, n_outputs), new state."""
        block_state, total, count = state
        h, block_state = self.block.step(self.embed(x_t), block_state)  # (B, W)
        h = self.norm(h)  # (B, W)
        total, count = total + h, count + 1
        pooled = total / count if self.shared.pooling == "mean" else h  # (B, W)
        return self.head(pooled), (block_state, total, count)  # (B, n_outputs)


def _check_anchor(window_anchor: str, io: ModelIO) -> bool:
    """Whether the model anchors its windows; SpaceError where it cannot."""
    if window_anchor not in WINDOW_ANCHORS:
        raise SpaceError(f"window_anchor must be one of {', '.join(WINDOW_ANCHORS)}, not "
                         f"'{window_anchor}'.")
    if window_anchor == "none":
        return False
    if io.task is not TaskKind.FORECAST or not io.anchors:
        raise SpaceError("window_anchor: last forecasts the change from a window's last value, "
                         "so it needs a forecasting task whose targets are among its inputs; "
                         "set window_anchor: none.")
    if io.causal:
        raise SpaceError("window_anchor: last subtracts a window's last step from all of its "
                         "steps, so a causal (streaming) model cannot use it; set "
                         "window_anchor: none.")
    return True


def _last_steps(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """x (B, T, F) -> each series' last valid step (B, F)."""
    if lengths is None:
        return x[:, -1]
    return x[torch.arange(x.shape[0], device=x.device), lengths - 1]


def series_znorm(x: torch.Tensor, lengths: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """x (B, T, F) -> each series' valid steps at mean 0 and standard deviation 1 per channel;
    padding stays zero."""
    mask = lengths_to_mask(lengths, x.shape[1]).unsqueeze(-1).to(x.dtype)  # (B, T, 1)
    count = lengths.clamp(min=1).to(x.dtype).view(-1, 1, 1)  # (B, 1, 1)
    mean = (x * mask).sum(1, keepdim=True) / count  # (B, 1, F)
    var = (((x - mean) * mask) ** 2).sum(1, keepdim=True) / count  # (B, 1, F)
    return (x - mean) / torch.sqrt(var + eps) * mask  # (B, T, F)
