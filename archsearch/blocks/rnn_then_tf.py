"""Hybrid 3: recurrent layers for local temporal features, Transformer layers on top.

A fused LSTM or GRU stack (bidirectional only when the model need not be causal) feeds an encoder
stack (``transformer.EncoderStack``). No positional encoding is added: the recurrent features
already carry order. The encoder's feed-forward may be a mixture of experts.
"""

from __future__ import annotations

import torch
from torch import nn

from archsearch.blocks.base import SequenceBlock, check_choice, check_positive
from archsearch.blocks.recurrent import run_rnn
from archsearch.blocks.registry import register
from archsearch.blocks.transformer import EncoderStack, check_encoder
from archsearch.errors import SpaceError
from archsearch.hparams import RnnThenTfConfig

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


@register("rnn_then_tf")
class RnnThenTfBlock(SequenceBlock):
    Config = RnnThenTfConfig

    def __init__(self, d_model: int, config: RnnThenTfConfig, causal: bool,
                 dropout: float) -> None:
        super().__init__(d_model, config, causal, dropout)
        directions = 2 if config.bidirectional else 1
        if d_model % directions:
            raise SpaceError(f"rnn_then_tf: d_model={d_model} must be even when bidirectional.")
        self.rnn = CELLS[config.cell](d_model, d_model // directions,
                                      num_layers=config.rnn_layers, batch_first=True,
                                      bidirectional=config.bidirectional,
                                      dropout=dropout if config.rnn_layers > 1 else 0.0)
        try:
            self.encoder = EncoderStack(d_model, config.tf_layers, config.n_heads, config.ff_mult,
                                        dropout, config.norm, False, config.moe_experts,
                                        config.moe_top_k)
        except SpaceError as exc:
            raise SpaceError(f"rnn_then_tf: {exc}") from None

    @classmethod
    def check_config(cls, config: RnnThenTfConfig, causal: bool) -> None:
        check_choice(cls.family, "cell", config.cell, tuple(CELLS))
        check_positive(cls.family, rnn_layers=config.rnn_layers)
        check_encoder(cls.family, config.tf_layers, config.n_heads, config.ff_mult, config.norm,
                      config.moe_experts, config.moe_top_k)
        if causal and config.bidirectional:
            raise SpaceError("rnn_then_tf: bidirectional layers read the future, so they are not "
                             "allowed when the model must be causal (streaming).")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        local = run_rnn(self.rnn, x, lengths)  # (B, T, D)
        return self.encoder(local, lengths, self.causal)  # (B, T, D)
