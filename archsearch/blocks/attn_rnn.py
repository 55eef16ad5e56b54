"""Hybrid 2: an attention-augmented RNN, strictly causal, for streaming.

Each layer runs a recurrent cell (LSTM or GRU) and, at every step t, lets the new recurrent state
h_t attend over the layer's past states h_{t-w+1..t} (multi-head scaled dot-product attention):

    h_t = cell(x_t, h_{t-1})                       (B, D)
    a_t = Attn(q = W_q n(h_t), K = W_k n(h_<=t), V = W_v n(h_<=t))   n = LayerNorm
    y_t = h_t + W_o a_t                            (B, D), the next layer's input

``window`` = w bounds the attended past (0: every past state). The attention never looks ahead,
whatever the ``causal`` flag says. The parallel path runs the fused recurrent kernel over the
whole sequence and one masked attention over all its states; the step path keeps the cell state
and a cache of the last w keys and values: O(w) state, so a bounded window streams in constant
memory and time per step.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.blocks.base import SequenceBlock, check_choice, check_positive, step_layers
from archsearch.blocks.recurrent import rnn_zero_state, run_rnn
from archsearch.blocks.registry import register
from archsearch.blocks.transformer import attention_mask
from archsearch.errors import SpaceError
from archsearch.hparams import AttnRnnConfig

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}


class AttnRnnLayer(nn.Module):
    def __init__(self, d_model: int, cell: str, n_heads: int, window: int,
                 dropout: float) -> None:
        super().__init__()
        self.n_heads, self.window = n_heads, window
        self.rnn = CELLS[cell](d_model, d_model, batch_first=True)
        self.norm = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def _heads(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """h (B, T, D) -> q, k, v, each (B, nh, T, hs)."""
        B, T, D = h.shape
        q, k, v = self.qkv(self.norm(h)).split(D, dim=2)  # 3 x (B, T, D)
        return tuple(t.view(B, T, self.n_heads, D // self.n_heads).transpose(1, 2)
                     for t in (q, k, v))  # type: ignore[return-value]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        h = run_rnn(self.rnn, x, lengths)  # (B, T, D)
        q, k, v = self._heads(h)  # (B, nh, T, hs)
        mask = attention_mask(lengths, T, causal=True, window=self.window)  # (B|1, 1, T, T)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           is_causal=mask is None)  # (B, nh, T, hs)
        return h + self.drop(self.proj(a.transpose(1, 2).reshape(B, T, D)))  # (B, T, D)

    def init_state(self, batch: int, device: torch.device) -> Any:
        D = self.proj.in_features
        hs = D // self.n_heads
        empty = torch.zeros(batch, self.n_heads, 0, hs, device=device)  # (B, nh, 0, hs)
        return rnn_zero_state(self.rnn, batch, device), empty, empty

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """x_t (B, D) -> y_t (B, D); state: (cell state, keys, values (B, nh, <=w, hs))."""
        cell_state, keys, values = state
        out, cell_state = self.rnn(x_t[:, None], cell_state)  # (B, 1, D)
        q, k, v = self._heads(out)  # (B, nh, 1, hs)
        keys = torch.cat([keys, k], dim=2)  # (B, nh, <=w+1, hs)
        values = torch.cat([values, v], dim=2)  # (B, nh, <=w+1, hs)
        if self.window:
            keys, values = keys[:, :, -self.window:], values[:, :, -self.window:]  # (B,nh,<=w,hs)
        a = F.scaled_dot_product_attention(q, keys, values)  # (B, nh, 1, hs)
        y = out[:, 0] + self.proj(a.reshape(x_t.shape))  # (B, D)
        return y, (cell_state, keys, values)


@register("attn_rnn")
class AttnRnnBlock(SequenceBlock):
    Config = AttnRnnConfig
    supports_step = True

    def __init__(self, d_model: int, config: AttnRnnConfig, causal: bool,
                 dropout: float) -> None:
        super().__init__(d_model, config, causal, dropout)
        if d_model % config.n_heads:
            raise SpaceError(f"attn_rnn: d_model={d_model} is not divisible by "
                             f"n_heads={config.n_heads}.")
        self.layers = nn.ModuleList(
            AttnRnnLayer(d_model, config.cell, config.n_heads, config.window, dropout)
            for _ in range(config.n_layers)
        )

    @classmethod
    def check_config(cls, config: AttnRnnConfig, causal: bool) -> None:
        check_choice(cls.family, "cell", config.cell, tuple(CELLS))
        check_positive(cls.family, n_layers=config.n_layers, n_heads=config.n_heads)
        if config.window < 0:
            raise SpaceError(f"attn_rnn: window must be >= 0 (0: all past states), got "
                             f"{config.window}.")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, lengths)  # (B, T, D)
        return x

    def init_state(self, batch: int, device: torch.device) -> Any:
        return [layer.init_state(batch, device) for layer in self.layers]

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        return step_layers(self.layers, x_t, state)
