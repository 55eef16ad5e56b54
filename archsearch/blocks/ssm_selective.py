"""Selective SSM: the Mamba block (Gu & Dao 2023), after johnma2006/mamba-minimal.

Glossary (d = d_inner = expand * d_model channels, n = d_state, r = dt_rank):
    u_t      input to the SSM at step t (after in_proj, causal depthwise conv, SiLU)   (B, d)
    A        state matrix, diagonal per channel, A = -exp(A_log)                          (d, n)
    Delta_t  input-dependent step size, softplus(dt_proj(x_proj(u_t)[:r]))                (B, d)
    B_t, C_t input-dependent input and output matrices, x_proj(u_t)[r:r+n], [r+n:]        (B, n)
    D        skip connection                                                               (d,)
    x_t      state: x_t = exp(Delta_t A) x_{t-1} + Delta_t B_t u_t                       (B, d, n)
    y_t      output: y_t = C_t . x_t + D u_t, then gated by SiLU(z_t) and out_proj

Because Delta, B and C depend on the input, the system is time-varying: there is no convolution
kernel as in S4D. The recurrence h_t = a_t h_{t-1} + b_t is still associative, so the parallel
path (:func:`linear_scan`) is a two-level chunked scan: the sequence is cut into chunks of about
sqrt(L) steps, every chunk is scanned from a zero state with all chunks processed together, a
short loop over chunks carries the boundary states, and one vectorised fix-up adds each carry
times the in-chunk running product of the decays a (<= 1, so nothing overflows; no exp of a
growing sum is ever taken). That is about 2 sqrt(L) vectorised steps instead of L, with the same
multiply-adds as the step loop, so both agree to float rounding.
The step path (:meth:`SelectiveLayer.step`) runs the recurrence one token at a time: a reference
loop for streaming, not a fast path for whole sequences.

A_log and the dt_proj bias (the discretisation) carry optimiser hints: no weight decay and a
tenth of the learning rate; D has no weight decay (the reference's ``_no_weight_decay``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.blocks.optim import set_optim_hints
from archsearch.blocks.ssm_s4d import SSM_OPTIM

TINY = 1e-30


def linear_scan(a: torch.Tensor, b: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """h_t = a_t h_{t-1} + b_t from h_{-1} = 0, along dim 1; a, b: (B, L, ...) -> (B, L, ...).

    Two-level chunked scan: about 2 sqrt(L) vectorised steps instead of L.
    """
    Bsz, L = b.shape[:2]
    rest = b.shape[2:]
    chunk = chunk or min(64, max(16, math.isqrt(L - 1) + 1))
    n = -(-L // chunk)  # chunks
    pad = n * chunk - L
    if pad:  # a = 1, b = 0 past the end: the state just carries over
        widths = (0, 0) * len(rest) + (0, pad)
        a, b = F.pad(a, widths, value=1.0), F.pad(b, widths)
    # unbind, not indexing: the backward of one unbind is one stack, while the backward of each
    # index op would allocate a full-size zero gradient (quadratic in L).
    a_i = a.reshape(Bsz, n, chunk, *rest).unbind(2)  # C x (B, n, ...)
    b_i = b.reshape(Bsz, n, chunk, *rest).unbind(2)  # C x (B, n, ...)
    h, decay = b_i[0], a_i[0]  # (B, n, ...) every chunk from a zero state, all at once
    hs, decays = [h], [decay]
    for i in range(1, chunk):
        h = torch.addcmul(b_i[i], a_i[i], h)  # (B, n, ...)
        # (B, n, ...) product of a within the chunk up to i; kept >= TINY so that it never
        # becomes a denormal (slow on CPUs); the error, < TINY * |carry|, is far below rounding.
        decay = (decay * a_i[i]).clamp_min(TINY)
        hs.append(h)
        decays.append(decay)
    h_local = torch.stack(hs, dim=2)  # (B, n, C, ...)
    decay = torch.stack(decays, dim=2)  # (B, n, C, ...)
    h_end, decay_end = h_local[:, :, -1].unbind(1), decay[:, :, -1].unbind(1)  # n x (B, ...)
    carry = torch.zeros_like(h_end[0])  # (B, ...) state entering chunk 0
    carries = [carry]
    for c in range(n - 1):
        carry = torch.addcmul(h_end[c], decay_end[c], carry)  # (B, ...) state leaving chunk c
        carries.append(carry)
    carry_in = torch.stack(carries, dim=1)[:, :, None]  # (B, n, 1, ...)
    h = torch.addcmul(h_local, decay, carry_in)  # (B, n, C, ...)
    return h.reshape(Bsz, n * chunk, *rest)[:, :L]  # (B, L, ...)


def loop_scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Reference: the same recurrence as :func:`linear_scan`, one step at a time."""
    h = torch.zeros_like(b[:, 0])  # (B, ...)
    out = []
    for a_t, b_t in zip(a.unbind(1), b.unbind(1), strict=True):
        h = torch.addcmul(b_t, a_t, h)  # (B, ...)
        out.append(h)
    return torch.stack(out, dim=1)  # (B, L, ...)


class SelectiveLayer(nn.Module):
    """One Mamba mixer: (B, L, D) -> (B, L, D)."""

    def __init__(self, d_model: int, d_state: int, expand: int, d_conv: int,
                 dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        d_inner = expand * d_model
        self.d_inner, self.d_state, self.d_conv = d_inner, d_state, d_conv
        self.dt_rank = math.ceil(d_model / 16)
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)
        self.conv1d = nn.Conv1d(d_inner, d_inner, kernel_size=d_conv, groups=d_inner,
                                padding=d_conv - 1)
        self.x_proj = nn.Linear(d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, d_inner)
        with torch.no_grad():  # Mamba's init: dt ~ log-uniform in [dt_min, dt_max]
            bound = self.dt_rank ** -0.5
            self.dt_proj.weight.uniform_(-bound, bound)
            dt = torch.exp(torch.rand(d_inner) * (math.log(dt_max) - math.log(dt_min))
                           + math.log(dt_min))  # (d,)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)
        set_optim_hints(self.dt_proj, "bias", **SSM_OPTIM)
        A = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(d_inner, 1)  # (d, n)
        self.A_log = nn.Parameter(torch.log(A))  # (d, n)
        set_optim_hints(self, "A_log", **SSM_OPTIM)
        self.D = nn.Parameter(torch.ones(d_inner))  # (d,)
        set_optim_hints(self, "D", weight_decay=0.0)
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)

    def _ssm_inputs(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """u (..., d) -> Delta (..., d), B (..., n), C (..., n)."""
        dt, B, C = self.x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        return F.softplus(self.dt_proj(dt)), B, C

    def forward(self, x: torch.Tensor, scan: str = "chunked") -> torch.Tensor:
        """x (B, L, D) -> (B, L, D); ``scan="loop"`` runs the reference step-by-step scan."""
        L = x.shape[1]
        u, z = self.in_proj(x).chunk(2, dim=-1)  # (B, L, d) each
        u = F.silu(self.conv1d(u.transpose(1, 2))[..., :L].transpose(1, 2))  # (B, L, d) causal
        delta, B, C = self._ssm_inputs(u)  # (B, L, d), (B, L, n), (B, L, n)
        with torch.autocast(x.device.type, enabled=False):  # the scan stays in float32
            delta, u32, B, C = delta.float(), u.float(), B.float(), C.float()
            A = -torch.exp(self.A_log)  # (d, n)
            a = torch.exp(delta[..., None] * A)  # (B, L, d, n)
            b = (delta * u32)[..., None] * B[:, :, None, :]  # (B, L, d, n)
            h = linear_scan(a, b) if scan == "chunked" else loop_scan(a, b)  # (B, L, d, n)
            y = (torch.einsum("bldn,bln->bld", h, C) + u32 * self.D).to(u.dtype)  # (B, L, d)
        return self.out_proj(y * F.silu(z))  # (B, L, D)

    def init_state(self, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(conv window (B, d, d_conv - 1), SSM state (B, d, n))."""
        return (torch.zeros(batch, self.d_inner, self.d_conv - 1, device=device),
                torch.zeros(batch, self.d_inner, self.d_state, device=device))

    def step(self, x_t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
             ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x_t (B, D) -> y_t (B, D)."""
        window, h = state
        u, z = self.in_proj(x_t).chunk(2, dim=-1)  # (B, d) each
        window = torch.cat([window, u[..., None]], dim=-1)  # (B, d, d_conv)
        u = (window * self.conv1d.weight[:, 0]).sum(-1) + self.conv1d.bias  # (B, d)
        u = F.silu(u)  # (B, d)
        delta, B, C = self._ssm_inputs(u)  # (B, d), (B, n), (B, n)
        A = -torch.exp(self.A_log)  # (d, n)
        h = torch.exp(delta[..., None] * A) * h + (delta * u)[..., None] * B[:, None]  # (B, d, n)
        y = torch.einsum("bdn,bn->bd", h, C) + u * self.D  # (B, d)
        return self.out_proj(y * F.silu(z)), (window[..., 1:], h)  # (B, D)
