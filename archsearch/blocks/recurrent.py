"""Stacked RNN / LSTM / GRU on PyTorch's fused kernels; ragged batches go through packing.

Unidirectional stacks stream: ``step`` runs the same fused module on one time step with the
carried hidden state (and cell state for the LSTM).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from archsearch.blocks.base import SequenceBlock, check_positive
from archsearch.blocks.registry import register
from archsearch.errors import SpaceError
from archsearch.hparams import RecurrentConfig


def run_rnn(rnn: nn.Module, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Run a batch-first fused RNN over x (B, T, I); ragged batches are packed.

    Packing keeps padding out of the backward direction of a bidirectional RNN and out of the
    final states; steps at or beyond a sequence's length come back as zeros.
    """
    B, T, _ = x.shape
    if bool((lengths == T).all()):
        out, _ = rnn(x)  # (B, T, H * directions)
        return out
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = rnn(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, H * dirs)
    return out


def rnn_zero_state(rnn: nn.Module, batch: int, device: torch.device) -> Any:
    """Zero initial state of a unidirectional fused RNN: h (L, B, H), plus c for an LSTM."""
    h = torch.zeros(rnn.num_layers, batch, rnn.hidden_size, device=device)
    return (h, torch.zeros_like(h)) if rnn.mode == "LSTM" else h


class _FusedRecurrent(SequenceBlock):
    Config = RecurrentConfig
    rnn_class: type[nn.RNNBase]
    supports_step = True
    threads_speed_training = False

    def __init__(self, d_model: int, config: RecurrentConfig, causal: bool,
                 dropout: float) -> None:
        super().__init__(d_model, config, causal, dropout)
        directions = 2 if config.bidirectional else 1
        if d_model % directions:
            raise SpaceError(f"{self.family}: d_model={d_model} must be even when bidirectional.")
        self.rnn = self.rnn_class(
            input_size=d_model,
            hidden_size=d_model // directions,  # concatenated directions give back d_model
            num_layers=config.n_layers,
            batch_first=True,
            bidirectional=config.bidirectional,
            dropout=dropout if config.n_layers > 1 else 0.0,
        )

    @classmethod
    def check_config(cls, config: RecurrentConfig, causal: bool) -> None:
        check_positive(cls.family, n_layers=config.n_layers)
        if causal and config.bidirectional:
            raise SpaceError(f"{cls.family}: bidirectional layers read the future, so they are "
                             "not allowed when the model must be causal (streaming).")

    @property
    def can_step(self) -> bool:
        return not self.config.bidirectional

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return run_rnn(self.rnn, x, lengths)  # (B, T, D)

    def init_state(self, batch: int, device: torch.device) -> Any:
        return rnn_zero_state(self.rnn, batch, device)

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        out, state = self.rnn(x_t[:, None], state)  # (B, 1, D)
        return out[:, 0], state  # (B, D)


@register("rnn")
class RNNBlock(_FusedRecurrent):
    rnn_class = nn.RNN


@register("lstm")
class LSTMBlock(_FusedRecurrent):
    rnn_class = nn.LSTM


@register("gru")
class GRUBlock(_FusedRecurrent):
    rnn_class = nn.GRU
