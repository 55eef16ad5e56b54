"""A full model: [per-series normalisation] -> input projection -> family block -> pooling ->
task head.

``series_norm`` z-normalises each series on its own (per channel, over its valid steps), the
standard preprocessing of time-series classification (the UCR archive ships its sets so): the
model learns shapes, not levels. It uses nothing but the series itself, so no other series or
split leaks into it, and it is part of the model, so the exported model applies it too. It
needs the whole series, so a causal (streaming) model cannot use it.

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
from archsearch.types import ModelIO

POOLINGS = ("last", "mean")


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
        return self.head(self.features(x, lengths))  # (B, n_outputs)

    def features(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, F), lengths: (B,) -> what the head reads: the pooled outputs (B, W), W =
        the block's ``out_dim``."""
        B, T, _ = x.shape
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long, device=x.device)
        if self.shared.series_norm:
            x = series_znorm(x, lengths)  # (B, T, F)
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
        if self.shared.series_norm:
            x = series_znorm(x, lengths)  # (N, T, F)
        self.block.init_from_data(self.embed(x), lengths)

    @property
    def can_step(self) -> bool:
        """True when the block streams (its step path reproduces its forward)."""
        return self.block.can_step and not self.shared.series_norm

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


def series_znorm(x: torch.Tensor, lengths: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """x (B, T, F) -> each series' valid steps at mean 0 and standard deviation 1 per channel;
    padding stays zero."""
    mask = lengths_to_mask(lengths, x.shape[1]).unsqueeze(-1).to(x.dtype)  # (B, T, 1)
    count = lengths.clamp(min=1).to(x.dtype).view(-1, 1, 1)  # (B, 1, 1)
    mean = (x * mask).sum(1, keepdim=True) / count  # (B, 1, F)
    var = (((x - mean) * mask) ** 2).sum(1, keepdim=True) / count  # (B, 1, F)
    return (x - mean) / torch.sqrt(var + eps) * mask  # (B, T, F)
