"""Stacked RNN / LSTM / GRU on PyTorch's fused kernels; ragged batches go through packing."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from archsearch.blocks.base import SequenceBlock
from archsearch.blocks.registry import register
from archsearch.errors import SpaceError


@dataclass(frozen=True)
class RecurrentConfig:
    n_layers: int = 1
    bidirectional: bool = False


class _FusedRecurrent(SequenceBlock):
    Config = RecurrentConfig
    rnn_class: type[nn.RNNBase]

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
        if config.n_layers < 1:
            raise SpaceError(f"{cls.family}: n_layers must be >= 1, got {config.n_layers}.")
        if causal and config.bidirectional:
            raise SpaceError(f"{cls.family}: bidirectional layers read the future, so they are "
                             "not allowed when the model must be causal (streaming).")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        if bool((lengths == T).all()):
            out, _ = self.rnn(x)  # (B, T, D)
            return out
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, D)
        return out


@register("rnn")
class RNNBlock(_FusedRecurrent):
    rnn_class = nn.RNN


@register("lstm")
class LSTMBlock(_FusedRecurrent):
    rnn_class = nn.LSTM


@register("gru")
class GRUBlock(_FusedRecurrent):
    rnn_class = nn.GRU
