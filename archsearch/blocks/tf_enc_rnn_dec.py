"""Hybrid 1: a Transformer encoder for global context, an LSTM decoder emitting the sequence.

The encoder (``transformer.EncoderStack``: self-attention, causal when the model must be) reads
the whole input; a unidirectional stacked LSTM then runs over the encoder's features and its
outputs (and final state) are the block's output. Positions: ``sinusoidal`` (added to the input)
or ``rotary``. The encoder's feed-forward may be a mixture of experts.
"""

from __future__ import annotations

import torch
from torch import nn

from archsearch.blocks.base import SequenceBlock, check_choice, check_positive
from archsearch.blocks.recurrent import run_rnn
from archsearch.blocks.registry import register
from archsearch.blocks.transformer import EncoderStack, check_encoder, sinusoidal_positions
from archsearch.errors import SpaceError
from archsearch.hparams import TfEncRnnDecConfig


@register("tf_enc_rnn_dec")
class TfEncRnnDecBlock(SequenceBlock):
    Config = TfEncRnnDecConfig

    def __init__(self, d_model: int, config: TfEncRnnDecConfig, causal: bool,
                 dropout: float) -> None:
        super().__init__(d_model, config, causal, dropout)
        try:
            self.encoder = EncoderStack(d_model, config.enc_layers, config.n_heads,
                                        config.ff_mult, dropout, config.norm,
                                        config.pos_encoding == "rotary", config.moe_experts,
                                        config.moe_top_k)
        except SpaceError as exc:
            raise SpaceError(f"tf_enc_rnn_dec: {exc}") from None
        self.decoder = nn.LSTM(d_model, d_model, num_layers=config.dec_layers, batch_first=True,
                               dropout=dropout if config.dec_layers > 1 else 0.0)

    @classmethod
    def check_config(cls, config: TfEncRnnDecConfig, causal: bool) -> None:
        check_encoder(cls.family, config.enc_layers, config.n_heads, config.ff_mult, config.norm,
                      config.moe_experts, config.moe_top_k)
        check_choice(cls.family, "pos_encoding", config.pos_encoding, ("sinusoidal", "rotary"))
        check_positive(cls.family, dec_layers=config.dec_layers)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        if self.config.pos_encoding == "sinusoidal":
            x = x + sinusoidal_positions(T, D, x.device)  # (B, T, D)
        context = self.encoder(x, lengths, self.causal)  # (B, T, D)
        return run_rnn(self.decoder, context, lengths)  # (B, T, D)
