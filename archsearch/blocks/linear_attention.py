"""Linear attention (Katharopoulos et al. 2020, "Transformers are RNNs").

Softmax attention ``softmax(q k^T) v`` is replaced by a kernel ``phi(q) phi(k)^T`` with the
feature map ``phi(x) = elu(x) + 1`` (positive, so the normaliser never vanishes):

    y_t = phi(q_t)^T S_t / (phi(q_t)^T z_t + eps),
    S_t = sum_s phi(k_s) v_s^T,  z_t = sum_s phi(k_s)

Non-causal: the sums run over every valid step (one (hs, hs) matrix per head). Causal: they run
over s <= t, i.e. prefix sums. The parallel path computes them chunk by chunk: within a chunk of
``CHUNK`` steps the masked (C, C) kernel matrix gives the exact local part, and an exclusive
prefix sum over per-chunk summaries ``sum phi(k) v^T`` carries everything earlier. Memory is
O(T * (C + hs^2 / C)) per head instead of the O(T^2) of softmax attention or the O(T * hs^2) of a
plain cumulative sum. The step path keeps (S_t, z_t): O(1) state per step, for streaming.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.blocks.base import SequenceBlock, check_choice, check_positive, lengths_to_mask
from archsearch.blocks.moe import DenseFeedForward
from archsearch.blocks.registry import register
from archsearch.blocks.transformer import sinusoidal_positions
from archsearch.errors import SpaceError
from archsearch.hparams import LinearAttentionConfig

CHUNK = 64  # steps per chunk of the causal parallel path
EPS = 1e-6


def feature_map(x: torch.Tensor) -> torch.Tensor:
    return F.elu(x) + 1.0


def causal_linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                            chunk: int = CHUNK) -> torch.Tensor:
    """Chunked causal linear attention; q, k: phi-mapped (B, H, T, hs), v (B, H, T, hs)."""
    B, H, T, hs = q.shape
    n = -(-T // chunk)  # chunks
    pad = n * chunk - T
    if pad:  # zero keys and values add nothing to the sums; padded queries are dropped below
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))  # (B, H, n*C, hs)
    q, k, v = (t.reshape(B, H, n, chunk, hs) for t in (q, k, v))  # (B, H, n, C, hs)
    scores = q @ k.transpose(-1, -2)  # (B, H, n, C, C)
    scores = scores * torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril()
    kv = k.transpose(-1, -2) @ v  # (B, H, n, hs, hs) per-chunk sum of phi(k) v^T
    ksum = k.sum(3)  # (B, H, n, hs)
    kv_before = F.pad(kv.cumsum(2), (0, 0, 0, 0, 1, 0))[:, :, :n]  # (B, H, n, hs, hs) exclusive
    ksum_before = F.pad(ksum.cumsum(2), (0, 0, 1, 0))[:, :, :n]  # (B, H, n, hs)
    num = scores @ v + q @ kv_before  # (B, H, n, C, hs)
    den = scores.sum(-1) + (q @ ksum_before[..., None])[..., 0]  # (B, H, n, C)
    y = num / (den[..., None] + EPS)  # (B, H, n, C, hs)
    return y.reshape(B, H, n * chunk, hs)[:, :, :T]  # (B, H, T, hs)


def global_linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                            valid: torch.Tensor) -> torch.Tensor:
    """Non-causal: every query sees every valid key. valid: (B, T) bool."""
    k = k * valid[:, None, :, None].to(k.dtype)  # (B, H, T, hs) padding contributes nothing
    kv = k.transpose(-1, -2) @ v  # (B, H, hs, hs)
    ksum = k.sum(2)  # (B, H, hs)
    den = (q @ ksum[..., None])[..., 0]  # (B, H, T)
    return (q @ kv) / (den[..., None] + EPS)  # (B, H, T, hs)


class LinearSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (..., D) -> phi(q), phi(k), v, each (..., nh, hs)."""
        D = x.shape[-1]
        q, k, v = self.qkv(x).split(D, dim=-1)  # 3 x (..., D)
        q, k, v = (t.unflatten(-1, (self.n_heads, D // self.n_heads)) for t in (q, k, v))
        return feature_map(q), feature_map(k), v  # (..., nh, hs)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, causal: bool) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = (t.transpose(1, 2) for t in self._heads(x))  # (B, nh, T, hs)
        if causal:
            y = causal_linear_attention(q, k, v)  # (B, nh, T, hs)
        else:
            y = global_linear_attention(q, k, v, lengths_to_mask(lengths, T))  # (B, nh, T, hs)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))  # (B, T, D)

    def step(self, x_t: torch.Tensor, S: torch.Tensor,
             z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x_t (B, D), S (B, nh, hs, hs), z (B, nh, hs) -> y_t (B, D), S, z."""
        B, D = x_t.shape
        q, k, v = self._heads(x_t)  # (B, nh, hs)
        S = S + k[..., :, None] * v[..., None, :]  # (B, nh, hs, hs)
        z = z + k  # (B, nh, hs)
        num = (q[..., None, :] @ S)[..., 0, :]  # (B, nh, hs)
        den = (q * z).sum(-1, keepdim=True)  # (B, nh, 1)
        return self.proj((num / (den + EPS)).reshape(B, D)), S, z  # (B, D)


class LinearAttentionLayer(nn.Module):
    """Pre-norm: x + attn(norm(x)), then x + ff(norm(x))."""

    def __init__(self, d_model: int, n_heads: int, ff_mult: int, dropout: float) -> None:
        super().__init__()
        self.attn = LinearSelfAttention(d_model, n_heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = DenseFeedForward(d_model, ff_mult)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, causal: bool) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), lengths, causal))  # (B, T, D)
        return x + self.drop(self.ff(self.norm2(x)))  # (B, T, D)

    def step(self, x_t: torch.Tensor, S: torch.Tensor,
             z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        a, S, z = self.attn.step(self.norm1(x_t), S, z)  # (B, D)
        x_t = x_t + a  # (B, D)
        return x_t + self.ff(self.norm2(x_t)), S, z  # (B, D)


@register("linear_attention")
class LinearAttentionBlock(SequenceBlock):
    Config = LinearAttentionConfig
    supports_step = True

    def __init__(self, d_model: int, config: LinearAttentionConfig, causal: bool,
                 dropout: float) -> None:
        super().__init__(d_model, config, causal, dropout)
        if d_model % config.n_heads:
            raise SpaceError(f"linear_attention: d_model={d_model} is not divisible by "
                             f"n_heads={config.n_heads}.")
        self.layers = nn.ModuleList(
            LinearAttentionLayer(d_model, config.n_heads, config.ff_mult, dropout)
            for _ in range(config.n_layers)
        )
        self.final_norm = nn.LayerNorm(d_model)

    @classmethod
    def check_config(cls, config: LinearAttentionConfig, causal: bool) -> None:
        check_positive(cls.family, n_layers=config.n_layers, n_heads=config.n_heads,
                       ff_mult=config.ff_mult)
        check_choice(cls.family, "pos_encoding", config.pos_encoding, ("sinusoidal", "none"))

    @property
    def can_step(self) -> bool:
        return self.causal  # the non-causal form needs every key before the first output

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        if self.config.pos_encoding == "sinusoidal":
            x = x + sinusoidal_positions(T, D, x.device)  # (B, T, D)
        for layer in self.layers:
            x = layer(x, lengths, self.causal)  # (B, T, D)
        return self.final_norm(x)  # (B, T, D)

    def init_state(self, batch: int, device: torch.device) -> Any:
        """(t, [(S (B, nh, hs, hs), z (B, nh, hs)) per layer])."""
        nh = self.config.n_heads
        hs = self.d_model // nh
        return 0, [(torch.zeros(batch, nh, hs, hs, device=device),
                    torch.zeros(batch, nh, hs, device=device)) for _ in self.layers]

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        t, sums = state
        if self.config.pos_encoding == "sinusoidal":
            x_t = x_t + sinusoidal_positions(1, self.d_model, x_t.device, offset=t)  # (B, D)
        new_sums = []
        for layer, (S, z) in zip(self.layers, sums, strict=True):
            x_t, S, z = layer.step(x_t, S, z)  # (B, D)
            new_sums.append((S, z))
        return self.final_norm(x_t), (t + 1, new_sums)  # (B, D)
