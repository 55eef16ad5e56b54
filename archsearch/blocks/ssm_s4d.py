"""S4D: a diagonal linear time-invariant state-space layer (Gu et al. 2022, state-spaces/s4 s4d.py).

Glossary (per channel h of the H = d_model channels; N/2 complex modes n, conjugate pairs
implied, hence the factor 2 and the real part):
    u_t      input at step t                      (B, H) per step; (B, H, L) as a sequence
    A_n      diagonal state matrix, complex:       A = -exp(log_A_real) + i * A_imag   (H, N/2)
    dt       step size, dt = exp(log_dt)           (H,)
    C_n      output matrix, complex                (H, N/2); B is folded into C (B = 1)
    D        skip connection                       (H,)
    dA, dB   zero-order-hold discretisation:       dA = exp(dt A),  dB = (exp(dt A) - 1) / A
    x_t      state: x_t = dA x_{t-1} + dB u_t      (B, H, N/2) complex
    y_t      output: y_t = 2 Re(sum_n C_n x_t,n) + D u_t
    K        convolution kernel: K_l = 2 Re(sum_n C_n dB_n dA_n^l)   (H, L)

Because the system is time-invariant, the whole output is the causal convolution y = K * u + D u,
computed in O(L log L) with an FFT of length 2L (the parallel path). The step path runs the
recurrence on x_t. Kernel generation (:meth:`S4DKernel.forward`) is kept apart from applying it.
The SSM parameters (log_dt, log_A_real, A_imag) carry optimiser hints in ``_optim``: no weight
decay and a tenth of the learning rate, as the reference code registers them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.blocks.optim import set_optim_hints

SSM_OPTIM = {"weight_decay": 0.0, "lr_scale": 0.1}


class S4DKernel(nn.Module):
    """Generates the (H, L) kernel K and the discretised (dA, dB, C) for stepping."""

    def __init__(self, d_model: int, d_state: int, dt_min: float = 1e-3,
                 dt_max: float = 1e-1) -> None:
        super().__init__()
        H, half = d_model, d_state // 2
        log_dt = torch.rand(H) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)  # (H,)
        C = torch.randn(H, half, dtype=torch.cfloat)  # (H, N/2)
        self.C = nn.Parameter(torch.view_as_real(C))  # (H, N/2, 2)
        self.log_dt = nn.Parameter(log_dt)  # (H,)
        self.log_A_real = nn.Parameter(torch.log(0.5 * torch.ones(H, half)))  # (H, N/2)
        self.A_imag = nn.Parameter(math.pi * torch.arange(half).float().repeat(H, 1))  # (H, N/2)
        for name in ("log_dt", "log_A_real", "A_imag"):
            set_optim_hints(self, name, **SSM_OPTIM)

    def discretise(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(dA, dB, C), each (H, N/2) complex."""
        dt = torch.exp(self.log_dt)  # (H,)
        A = -torch.exp(self.log_A_real) + 1j * self.A_imag  # (H, N/2)
        dtA = A * dt[:, None]  # (H, N/2)
        return torch.exp(dtA), (torch.exp(dtA) - 1.0) / A, torch.view_as_complex(self.C)

    def forward(self, L: int) -> torch.Tensor:
        """(H, L) real kernel."""
        dt = torch.exp(self.log_dt)  # (H,)
        A = -torch.exp(self.log_A_real) + 1j * self.A_imag  # (H, N/2)
        dtA = A * dt[:, None]  # (H, N/2)
        powers = dtA[:, :, None] * torch.arange(L, device=A.device)  # (H, N/2, L)
        C = torch.view_as_complex(self.C) * (torch.exp(dtA) - 1.0) / A  # (H, N/2)
        return 2 * torch.einsum("hn,hnl->hl", C, torch.exp(powers)).real  # (H, L)


class S4DLayer(nn.Module):
    """u (B, L, H) -> GELU(K * u + D u) -> Linear(H, 2H) -> GLU -> (B, L, H)."""

    def __init__(self, d_model: int, d_state: int, dropout: float) -> None:
        super().__init__()
        self.kernel = S4DKernel(d_model, d_state)
        self.D = nn.Parameter(torch.randn(d_model))  # (H,)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(d_model, 2 * d_model)

    def _output(self, y: torch.Tensor) -> torch.Tensor:
        return F.glu(self.out(self.drop(F.gelu(y))), dim=-1)  # (..., H)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        L = u.shape[1]
        with torch.autocast(u.device.type, enabled=False):  # kernel and FFT stay in float32
            u32 = u.float()  # (B, L, H)
            k = self.kernel(L)  # (H, L)
            k_f = torch.fft.rfft(k, n=2 * L)  # (H, L + 1)
            u_f = torch.fft.rfft(u32.transpose(1, 2), n=2 * L)  # (B, H, L + 1)
            y = torch.fft.irfft(u_f * k_f, n=2 * L)[..., :L].transpose(1, 2)  # (B, L, H)
            y = (y + u32 * self.D).to(u.dtype)  # (B, L, H)
        return self._output(y)  # (B, L, H)

    def init_state(self, batch: int, device: torch.device) -> torch.Tensor:
        return torch.zeros(batch, *self.kernel.log_A_real.shape, dtype=torch.cfloat,
                           device=device)  # (B, H, N/2)

    def step(self, u_t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """u_t (B, H), x (B, H, N/2) complex -> y_t (B, H), x."""
        dA, dB, C = self.kernel.discretise()  # (H, N/2)
        x = dA * x + dB * u_t[..., None]  # (B, H, N/2)
        y = 2 * (x * C).sum(-1).real + self.D * u_t  # (B, H)
        return self._output(y), x  # (B, H)
