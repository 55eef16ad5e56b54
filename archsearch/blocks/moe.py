"""Position-wise feed-forward: dense, or a top-k mixture of experts (Shazeer et al. 2017).

The mixture routes every token on its own: a linear router scores ``E`` experts, the ``top_k``
best are run and their outputs mixed with the router's softmax weights renormalised over the
chosen ones. There is no capacity limit, so no token is ever dropped and a token's output does
not depend on the other tokens of the batch: padding and causality are kept exactly.

Each forward also records ``aux_loss``, the Switch Transformer load-balancing loss
(``E * sum_e f_e * P_e``; 1.0 when the load is even). Training may add
``coef * moe_aux_loss(model)`` to the task loss to keep experts in use; the family works without it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.errors import SpaceError


class DenseFeedForward(nn.Module):
    def __init__(self, d_model: int, ff_mult: int) -> None:
        super().__init__()
        self.up = nn.Linear(d_model, ff_mult * d_model)
        self.down = nn.Linear(ff_mult * d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))  # (..., D)


class MixtureOfExperts(nn.Module):
    def __init__(self, d_model: int, ff_mult: int, n_experts: int, top_k: int) -> None:
        super().__init__()
        self.n_experts = n_experts
        self.top_k = top_k
        self.router = nn.Linear(d_model, n_experts, bias=False)
        self.experts = nn.ModuleList(DenseFeedForward(d_model, ff_mult) for _ in range(n_experts))
        self.aux_loss = torch.zeros(())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        tokens = x.reshape(-1, shape[-1])  # (N, D)
        probs = self.router(tokens).float().softmax(-1)  # (N, E)
        weights, chosen = probs.topk(self.top_k, dim=-1)  # (N, k), (N, k)
        weights = (weights / weights.sum(-1, keepdim=True)).to(x.dtype)  # (N, k)
        out = torch.zeros_like(tokens)  # (N, D)
        # Every expert runs, on zero rows when unused: no data-dependent branch, so a traced
        # (TorchScript) model routes like the eager one.
        for e, expert in enumerate(self.experts):
            token_idx, slot = (chosen == e).nonzero(as_tuple=True)  # (n_e,), (n_e,)
            y = expert(tokens[token_idx]) * weights[token_idx, slot, None]  # (n_e, D)
            out.index_add_(0, token_idx, y)
        load = F.one_hot(chosen[:, 0], self.n_experts).float().mean(0)  # (E,) share routed first
        self.aux_loss = self.n_experts * (load * probs.mean(0)).sum()
        return out.reshape(shape)  # (..., D)


def feed_forward(d_model: int, ff_mult: int, moe_experts: int, moe_top_k: int) -> nn.Module:
    """A dense feed-forward when ``moe_experts == 0``, else a top-``moe_top_k`` mixture."""
    if moe_experts == 0:
        return DenseFeedForward(d_model, ff_mult)
    return MixtureOfExperts(d_model, ff_mult, moe_experts, moe_top_k)


def check_moe(family: str, moe_experts: int, moe_top_k: int) -> None:
    if moe_experts < 0 or moe_experts == 1:
        raise SpaceError(f"{family}: moe_experts must be 0 (a dense feed-forward) or >= 2, got "
                         f"{moe_experts}.")
    if moe_experts and not 1 <= moe_top_k <= moe_experts:
        raise SpaceError(f"{family}: moe_top_k must be between 1 and moe_experts="
                         f"{moe_experts}, got {moe_top_k}.")


def reset_aux_losses(model: nn.Module) -> None:
    """Drop the recorded losses (and their autograd graphs), e.g. before ``copy.deepcopy``."""
    for m in model.modules():
        if isinstance(m, MixtureOfExperts):
            m.aux_loss = torch.zeros(())


def moe_aux_loss(model: nn.Module) -> torch.Tensor:
    """Sum of the load-balancing losses of every mixture in ``model`` from its last forward."""
    losses = [m.aux_loss for m in model.modules() if isinstance(m, MixtureOfExperts)]
    return torch.stack(losses).sum() if losses else torch.zeros(())
