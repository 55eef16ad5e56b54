"""Transformer encoder on ``F.scaled_dot_product_attention`` (nanoGPT-style, pre- or post-norm).

Positions: ``sinusoidal`` (added to the input, Vaswani et al. 2017), ``learned`` (an embedding
table of ``max_len`` rows) or ``rotary`` (RoFormer, Su et al. 2021: queries and keys rotated by
their position inside every attention layer, so attention scores depend on relative offsets).
The feed-forward is dense or a top-k mixture of experts (``moe_experts`` > 0, see ``moe.py``).
The layer stack (:class:`EncoderStack`) is shared with the hybrids ``tf_enc_rnn_dec`` and
``rnn_then_tf``.

Dropout applies to each sublayer's output (residual dropout), not to the attention weights (as
in ``attn_rnn``): PyTorch's CPU attention has no fused kernel with dropout, so ``dropout_p > 0``
takes the math path, which holds heads x T x T weights per sequence. At 1024 steps that made a
training step several times slower (``benchmarks/blocks.py``, ``attention_dropout_train_step``)
and its memory quadratic in the length, where the fused kernel keeps nothing of T x T.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.blocks.base import SequenceBlock, check_choice, check_positive, lengths_to_mask
from archsearch.blocks.moe import check_moe, feed_forward
from archsearch.blocks.registry import register
from archsearch.errors import SpaceError
from archsearch.hparams import TransformerConfig

POS_ENCODINGS = ("sinusoidal", "learned", "rotary")
NORMS = ("pre", "post")


def rotary_tables(seq_len: int, head_dim: int, device: torch.device,
                  offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin), each (T, hs/2), for positions ``offset .. offset + T - 1``."""
    inv_freq = 10000.0 ** (-torch.arange(0, head_dim, 2, device=device,
                                         dtype=torch.float32) / head_dim)  # (hs/2,)
    pos = torch.arange(offset, offset + seq_len, device=device, dtype=torch.float32)  # (T,)
    angles = pos[:, None] * inv_freq[None, :]  # (T, hs/2)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x_i, x_{i + hs/2}) of x (..., T, hs) by the position angle (rotate-half)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]  # (..., T, hs/2)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # (..., T, hs)


def attention_mask(lengths: torch.Tensor, seq_len: int, causal: bool,
                   window: int = 0) -> torch.Tensor | None:
    """Bool mask (B or 1, 1, T, T) of the keys each query may see, or None when none is needed.

    None means "every key" (non-causal, no padding) or "the causal triangle" (causal, no padding,
    no window), which :class:`SelfAttention` then passes as ``is_causal``. ``window`` > 0 limits a
    causal query to its ``window`` most recent keys, itself included; over an unpadded batch
    that mask is the same for every sequence, so it is one (1, 1, T, T) that broadcasts (B
    copies would cost B x T x T bytes, and B x T x T floats inside the attention, for nothing).
    """
    padded = not bool((lengths == seq_len).all())
    windowed = causal and window > 0
    if not padded and not windowed:
        return None
    steps = torch.arange(seq_len, device=lengths.device)
    offset = steps[:, None] - steps[None, :]  # (T, T) query minus key
    mask = lengths_to_mask(lengths, seq_len)[:, None, None, :] if padded else None  # (B,1,1,T)
    if causal:
        allowed = offset >= 0
        if window:
            allowed = allowed & (offset < window)  # (T, T)
        if mask is None:  # unpadded, so windowed: the window alone, the same for every sequence
            return allowed[None, None]  # (1, 1, T, T)
        mask = mask & allowed  # (B, 1, T, T)
    # Every query may see itself: a padded query then never has an empty row (whose softmax is
    # NaN and would leak into valid steps through 0 * NaN); valid queries see no padded key.
    return mask | (offset == 0)  # (B, 1, T, T)


class SelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, rotary: bool = False) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.rotary = rotary
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, causal: bool) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=2)  # 3 x (B, T, D)
        q, k, v = (t.view(B, T, self.n_heads, D // self.n_heads).transpose(1, 2)
                   for t in (q, k, v))  # (B, nh, T, hs)
        if self.rotary:
            cos, sin = rotary_tables(T, D // self.n_heads, x.device)  # (T, hs/2)
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           is_causal=causal and mask is None)  # (B, nh, T, hs)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))  # (B, T, D)


class EncoderLayer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, ff_mult: int, dropout: float,
                 pre_norm: bool, rotary: bool = False, moe_experts: int = 0,
                 moe_top_k: int = 1) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.attn = SelfAttention(d_model, n_heads, rotary)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = feed_forward(d_model, ff_mult, moe_experts, moe_top_k)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, causal: bool) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.drop(self.attn(self.norm1(x), mask, causal))  # (B, T, D)
            return x + self.drop(self.ff(self.norm2(x)))  # (B, T, D)
        x = self.norm1(x + self.drop(self.attn(x, mask, causal)))  # (B, T, D)
        return self.norm2(x + self.drop(self.ff(x)))  # (B, T, D)


class EncoderStack(nn.Module):
    """``n_layers`` encoder layers, masks built from ``lengths``, final norm when pre-norm."""

    def __init__(self, d_model: int, n_layers: int, n_heads: int, ff_mult: int, dropout: float,
                 norm: str, rotary: bool = False, moe_experts: int = 0,
                 moe_top_k: int = 1) -> None:
        super().__init__()
        if d_model % n_heads:
            raise SpaceError(f"d_model={d_model} is not divisible by n_heads={n_heads}.")
        if rotary and (d_model // n_heads) % 2:
            raise SpaceError(f"rotary positions need an even head size; d_model={d_model} / "
                             f"n_heads={n_heads} = {d_model // n_heads}.")
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, n_heads, ff_mult, dropout, norm == "pre", rotary, moe_experts,
                         moe_top_k)
            for _ in range(n_layers)
        )
        self.final_norm = nn.LayerNorm(d_model) if norm == "pre" else nn.Identity()

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, causal: bool) -> torch.Tensor:
        mask = attention_mask(lengths, x.shape[1], causal)  # (B, 1, T, T) or None
        for layer in self.layers:
            x = layer(x, mask, causal)  # (B, T, D)
        return self.final_norm(x)  # (B, T, D)


def sinusoidal_positions(seq_len: int, d_model: int, device: torch.device,
                         offset: int = 0) -> torch.Tensor:
    """(T, D) fixed sinusoidal encodings (Vaswani et al. 2017) of positions offset.. ."""
    position = torch.arange(offset, offset + seq_len, device=device,
                            dtype=torch.float32)[:, None]  # (T, 1)
    div = torch.exp(torch.arange(0, d_model, 2, device=device, dtype=torch.float32)
                    * (-math.log(10000.0) / d_model))  # (D/2,)
    table = torch.zeros(seq_len, d_model, device=device)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)[:, : d_model // 2]
    return table


def check_encoder(family: str, n_layers: int, n_heads: int, ff_mult: int, norm: str,
                  moe_experts: int, moe_top_k: int) -> None:
    check_positive(family, n_layers=n_layers, n_heads=n_heads, ff_mult=ff_mult)
    check_choice(family, "norm", norm, NORMS)
    check_moe(family, moe_experts, moe_top_k)


@register("transformer")
class TransformerBlock(SequenceBlock):
    Config = TransformerConfig

    def __init__(self, d_model: int, config: TransformerConfig, causal: bool,
                 dropout: float) -> None:
        super().__init__(d_model, config, causal, dropout)
        self.learned_pos = (nn.Embedding(config.max_len, d_model)
                            if config.pos_encoding == "learned" else None)
        try:
            self.encoder = EncoderStack(d_model, config.n_layers, config.n_heads, config.ff_mult,
                                        dropout, config.norm, config.pos_encoding == "rotary",
                                        config.moe_experts, config.moe_top_k)
        except SpaceError as exc:
            raise SpaceError(f"transformer: {exc}") from None

    @classmethod
    def check_config(cls, config: TransformerConfig, causal: bool) -> None:
        check_encoder(cls.family, config.n_layers, config.n_heads, config.ff_mult, config.norm,
                      config.moe_experts, config.moe_top_k)
        check_choice(cls.family, "pos_encoding", config.pos_encoding, POS_ENCODINGS)
        check_positive(cls.family, max_len=config.max_len)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        if self.learned_pos is not None:
            if T > self.config.max_len:
                raise ValueError(f"sequence length {T} exceeds learned max_len "
                                 f"{self.config.max_len}")
            x = x + self.learned_pos(torch.arange(T, device=x.device))  # (B, T, D)
        elif self.config.pos_encoding == "sinusoidal":
            x = x + sinusoidal_positions(T, D, x.device)  # (B, T, D)
        return self.encoder(x, lengths, self.causal)  # (B, T, D)
