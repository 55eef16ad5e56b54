"""A full model: input projection -> family block -> pooling -> task head."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from archsearch.blocks.base import SequenceBlock, lengths_to_mask
from archsearch.errors import SpaceError
from archsearch.types import ModelIO

POOLINGS = ("last", "mean")


@dataclass(frozen=True)
class ModelHParams:
    """Hyperparameters every family shares; the rest go to the family's own Config."""

    d_model: int = 64
    dropout: float = 0.0
    pooling: str = "last"  # how a sequence becomes one vector (classification/regression)


class SequenceModel(nn.Module):
    def __init__(self, io: ModelIO, shared: ModelHParams, block: SequenceBlock) -> None:
        super().__init__()
        if shared.pooling not in POOLINGS:
            raise SpaceError(f"pooling must be one of {', '.join(POOLINGS)}, not "
                             f"'{shared.pooling}'.")
        self.io = io
        self.shared = shared
        self.embed = nn.Linear(io.n_features, shared.d_model)
        self.block = block
        self.norm = nn.LayerNorm(shared.d_model)
        self.head = nn.Linear(shared.d_model, io.n_outputs)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, F), lengths: (B,) -> (B, n_outputs)."""
        B, T, _ = x.shape
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long, device=x.device)
        h = self.norm(self.block(self.embed(x), lengths))  # (B, T, D)
        if self.shared.pooling == "mean":
            mask = lengths_to_mask(lengths, T).unsqueeze(-1).to(h.dtype)  # (B, T, 1)
            pooled = (h * mask).sum(1) / lengths.clamp(min=1).unsqueeze(-1).to(h.dtype)  # (B, D)
        else:
            pooled = h[torch.arange(B, device=x.device), lengths - 1]  # (B, D)
        return self.head(pooled)  # (B, n_outputs)
