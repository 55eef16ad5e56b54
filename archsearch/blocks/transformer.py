"""Transformer encoder on ``F.scaled_dot_product_attention`` (nanoGPT-style, pre- or post-norm)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.blocks.base import SequenceBlock, lengths_to_mask
from archsearch.blocks.registry import register
from archsearch.errors import SpaceError


@dataclass(frozen=True)
class TransformerConfig:
    n_layers: int = 2
    n_heads: int = 4
    ff_mult: int = 4
    norm: str = "pre"  # "pre" | "post"
    pos_encoding: str = "sinusoidal"  # "sinusoidal" | "learned"
    max_len: int = 8192  # learned positions only


class SelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, causal: bool) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)  # 3 x (B, T, D)
        q, k, v = (t.view(B, T, self.n_heads, D // self.n_heads).transpose(1, 2)
                   for t in (q, k, v))  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
            is_causal=causal and mask is None,
        )  # (B, nh, T, hs)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))  # (B, T, D)


class EncoderLayer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, ff_mult: int, dropout: float,
                 pre_norm: bool) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.attn = SelfAttention(d_model, n_heads, dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(
            nn.Linear(d_model, ff_mult * d_model), nn.GELU(), nn.Linear(ff_mult * d_model, d_model)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, causal: bool) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.drop(self.attn(self.norm1(x), mask, causal))
            return x + self.drop(self.ff(self.norm2(x)))
        x = self.norm1(x + self.drop(self.attn(x, mask, causal)))
        return self.norm2(x + self.drop(self.ff(x)))


def sinusoidal_positions(seq_len: int, d_model: int, device: torch.device) -> torch.Tensor:
    """(T, D) fixed sinusoidal encodings (Vaswani et al. 2017)."""
    position = torch.arange(seq_len, device=device, dtype=torch.float32)[:, None]  # (T, 1)
    div = torch.exp(torch.arange(0, d_model, 2, device=device, dtype=torch.float32)
                    * (-math.log(10000.0) / d_model))  # (D/2,)
    table = torch.zeros(seq_len, d_model, device=device)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)[:, : d_model // 2]
    return table


@register("transformer")
class TransformerBlock(SequenceBlock):
    Config = TransformerConfig

    def __init__(self, d_model: int, config: TransformerConfig, causal: bool,
                 dropout: float) -> None:
        super().__init__(d_model, config, causal, dropout)
        if d_model % config.n_heads:
            raise SpaceError(f"transformer: d_model={d_model} is not divisible by "
                             f"n_heads={config.n_heads}.")
        self.learned_pos = (nn.Embedding(config.max_len, d_model)
                            if config.pos_encoding == "learned" else None)
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, config.n_heads, config.ff_mult, dropout, config.norm == "pre")
            for _ in range(config.n_layers)
        )
        self.final_norm = nn.LayerNorm(d_model) if config.norm == "pre" else nn.Identity()

    @classmethod
    def check_config(cls, config: TransformerConfig, causal: bool) -> None:
        if config.norm not in ("pre", "post"):
            raise SpaceError(f"transformer: norm must be 'pre' or 'post', not '{config.norm}'.")
        if config.pos_encoding not in ("sinusoidal", "learned"):
            raise SpaceError("transformer: pos_encoding must be 'sinusoidal' or 'learned', not "
                             f"'{config.pos_encoding}'.")
        if config.n_layers < 1 or config.n_heads < 1 or config.ff_mult < 1:
            raise SpaceError("transformer: n_layers, n_heads and ff_mult must be >= 1.")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        if self.learned_pos is not None:
            if T > self.config.max_len:
                raise ValueError(f"sequence length {T} exceeds learned max_len "
                                 f"{self.config.max_len}")
            x = x + self.learned_pos(torch.arange(T, device=x.device))  # (B, T, D)
        else:
            x = x + sinusoidal_positions(T, D, x.device)
        mask = None
        if not bool((lengths == T).all()):
            valid = lengths_to_mask(lengths, T)  # (B, T)
            mask = valid[:, None, None, :]  # (B, 1, 1, T) keys a query may attend to
            if self.causal:
                mask = mask & torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        for layer in self.layers:
            x = layer(x, mask, self.causal)
        return self.final_norm(x)  # (B, T, D)
