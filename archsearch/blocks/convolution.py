"""Parts the convolutional classifiers share: ``fcn``, ``resnet``, ``inception`` and ``lite``.

Glossary (tsai's names where it has one):
    B, C, T   batch, channels, steps; tensors inside the blocks are channels-first (B, C, T)
    mask      (B, 1, T) bool, True on a sequence's valid steps (:func:`channel_mask`)
    k, r      a convolution's taps and dilation; it sees (k - 1) r past (and, 'same', future)
              steps: its ``history``
    Conv      a 1-D convolution without bias (every one here feeds a BatchNorm, which cancels
              a bias) that zeroes its input's padded steps first
    ConvBlock Conv -> BatchNorm -> ReLU (the ReLU optional), tsai's ``ConvBlock``

Padding (ragged batches): every convolution with more than one tap zeroes the padded steps of
its input, and the max-pool fills them with -inf, so nothing beyond a sequence's length reaches
its valid outputs. Non-causal convolutions use Keras' 'same' padding, as the papers' code
does: (k - 1) r // 2 zeros on the left and the rest on the right; at a sequence's end those
right zeros are exactly the zeroed padding, so a padded batch equals its sequences run alone.
Causal convolutions pad (k - 1) r zeros on the left only (as ``tcn.py``), so the output at t
sees inputs up to t.

BatchNorm (:class:`MaskedBatchNorm1d`): in training its batch statistics (and the running
statistics it updates) come from valid steps only, so padding does not bias them; in eval mode
it is the per-channel affine map of its running statistics, applied at every step.

Streaming: the causal forms step. A convolution keeps its last (k - 1) r inputs, the max-pool
its last two; a BatchNorm steps with its running statistics. The step path is therefore the
forward of an eval-mode model (as everything streamed is), whatever the module's mode.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from archsearch.blocks.base import SequenceBlock, lengths_to_mask, step_layers


def channel_mask(lengths: torch.Tensor, seq_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, 1, T) bool, True on valid steps (broadcasts over channels)."""
    return lengths_to_mask(lengths, seq_len)[:, None, :]  # (B, 1, T)


class Conv(nn.Module):
    """A 1-D convolution over (B, C_in, T) with 'same' or causal padding and no bias."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, causal: bool,
                 dilation: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.c_in = c_in
        self.history = (kernel_size - 1) * dilation  # steps besides t that an output sees
        left = self.history if causal else self.history // 2  # Keras 'same': extra on the right
        self.pad = (left, self.history - left)
        self.conv = nn.Conv1d(c_in, c_out, kernel_size, dilation=dilation, groups=groups,
                              bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, T), mask (B, 1, T) -> (B, C_out, T)."""
        if self.history:  # a 1x1 convolution is per step: padding cannot reach valid steps
            x = x.masked_fill(~mask, 0.0)  # (B, C_in, T) padded steps zeroed
        return self.conv(F.pad(x, self.pad))  # (B, C_out, T)

    def init_state(self, batch: int, device: torch.device) -> torch.Tensor:
        return torch.zeros(batch, self.c_in, self.history, device=device)  # (B, C_in, history)

    def step(self, x_t: torch.Tensor, past: torch.Tensor | None
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x_t (B, C_in), past (B, C_in, history) -> y_t (B, C_out), past (causal form only);
        a 1x1 convolution may take ``past=None``."""
        window = x_t[..., None] if past is None else torch.cat([past, x_t[..., None]], dim=-1)
        return self.conv(window)[..., 0], None if past is None else window[..., 1:]  # (B, C_out)


class SeparableConv(nn.Module):
    """Depthwise-separable convolution (Keras' ``SeparableConv1D``, depth multiplier 1): a
    depthwise ``kernel_size``-tap convolution per channel, then a 1x1 convolution mixing them."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, causal: bool,
                 dilation: int = 1) -> None:
        super().__init__()
        self.depthwise = Conv(c_in, c_in, kernel_size, causal, dilation, groups=c_in)
        self.pointwise = Conv(c_in, c_out, 1, causal)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, T), mask (B, 1, T) -> (B, C_out, T)."""
        return self.pointwise(self.depthwise(x, mask), mask)  # (B, C_out, T)

    def init_state(self, batch: int, device: torch.device) -> torch.Tensor:
        return self.depthwise.init_state(batch, device)  # the 1x1 convolution keeps nothing

    def step(self, x_t: torch.Tensor, past: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, past = self.depthwise.step(x_t, past)  # (B, C_in)
        return self.pointwise.step(h, None)[0], past  # (B, C_out)


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm over channels of (B, C, T) whose training statistics skip padded steps."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """x (B, C, T), mask (B, 1, T) -> (B, C, T); in training, padded steps hold the bias."""
        if not self.training:
            return super().forward(x)  # (B, C, T) per-channel affine: no step sees another
        # Masked sums rather than gathering the valid steps: elementwise work only. Statistics
        # in float32 (under bf16 autocast too, as cuDNN's BatchNorm keeps them).
        xf = x.float()  # (B, C, T)
        n = mask.sum()  # valid steps in the batch
        mean = xf.masked_fill(~mask, 0.0).sum(dim=(0, 2)) / n  # (C,)
        centred = (xf - mean[:, None]).masked_fill(~mask, 0.0)  # (B, C, T)
        var = centred.square().sum(dim=(0, 2)) / n  # (C,) biased, as BatchNorm normalises
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                            else self.momentum)
                unbiased = var * n / (n - 1).clamp(min=1)  # (C,) as BatchNorm's running_var
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        scale = torch.rsqrt(var + self.eps)  # (C,)
        if self.affine:
            scale = scale * self.weight  # (C,)
        y = centred * scale[:, None]  # (B, C, T)
        if self.affine:
            y = y + self.bias[:, None]  # (B, C, T)
        return y.to(x.dtype)  # (B, C, T)

    def step(self, x_t: torch.Tensor) -> torch.Tensor:
        """x_t (B, C) -> (B, C) with the running statistics (eval-mode BatchNorm)."""
        return F.batch_norm(x_t, self.running_mean, self.running_var, self.weight, self.bias,
                            False, 0.0, self.eps)  # (B, C)


class MaxPool(nn.Module):
    """Max over ``kernel_size`` steps, stride 1 ('same' or causal): InceptionTime's
    ``MaxPool1D(pool_size=3, strides=1, padding='same')``."""

    def __init__(self, causal: bool, kernel_size: int = 3) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.history = kernel_size - 1
        left = self.history if causal else self.history // 2
        self.pad = (left, self.history - left)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, C, T), mask (B, 1, T) -> (B, C, T); padded steps never win a max."""
        x = F.pad(x.masked_fill(~mask, -torch.inf), self.pad, value=-torch.inf)  # (B, C, T+k-1)
        y = F.max_pool1d(x, self.kernel_size, stride=1)  # (B, C, T)
        return y.masked_fill(~mask, 0.0)  # (B, C, T) -inf where a window was all padding

    def init_state(self, batch: int, channels: int, device: torch.device) -> torch.Tensor:
        return torch.full((batch, channels, self.history), -torch.inf, device=device)

    def step(self, x_t: torch.Tensor, past: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x_t (B, C), past (B, C, k - 1) -> y_t (B, C), past (causal form only)."""
        window = torch.cat([past, x_t[..., None]], dim=-1)  # (B, C, k)
        return window.amax(dim=-1), window[..., 1:]  # (B, C)


class ConvBlock(nn.Module):
    """Conv -> BatchNorm -> ReLU (``act=False``: no ReLU), tsai's ``ConvBlock``."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, causal: bool,
                 act: bool = True) -> None:
        super().__init__()
        self.conv = Conv(c_in, c_out, kernel_size, causal)
        self.bn = MaskedBatchNorm1d(c_out)
        self.act = act

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, C_in, T), mask (B, 1, T) -> (B, C_out, T)."""
        h = self.bn(self.conv(x, mask), mask)  # (B, C_out, T)
        return F.relu(h) if self.act else h  # (B, C_out, T)

    def init_state(self, batch: int, device: torch.device) -> torch.Tensor:
        return self.conv.init_state(batch, device)

    def step(self, x_t: torch.Tensor, past: torch.Tensor | None
             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x_t (B, C_in), past (B, C_in, history) or None (1x1) -> y_t (B, C_out), past."""
        h, past = self.conv.step(x_t, past)  # (B, C_out)
        h = self.bn.step(h)  # (B, C_out)
        return (F.relu(h) if self.act else h), past  # (B, C_out)



class ConvFamily(SequenceBlock):
    """Base of the convolutional classifiers: they stream in their causal form only."""

    supports_step = True  # the causal form

    @property
    def can_step(self) -> bool:
        return self.causal


class ConvStack(ConvFamily):
    """A family that is a plain stack ``self.layers`` of blocks ``(h, mask) -> h`` with
    ``init_state``/``step`` (FCN, ResNet); :meth:`between` runs after each layer."""

    layers: nn.ModuleList

    def between(self, h: torch.Tensor) -> torch.Tensor:
        return h

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = channel_mask(lengths, x.shape[1])  # (B, 1, T)
        h = x.transpose(1, 2)  # (B, D, T)
        for layer in self.layers:
            h = self.between(layer(h, mask))  # (B, C, T)
        return h.transpose(1, 2)  # (B, T, D)

    def init_state(self, batch: int, device: torch.device) -> Any:
        check_can_step(self)
        return [layer.init_state(batch, device) for layer in self.layers]

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        return step_layers(self.layers, x_t, state)  # (B, D)


def check_can_step(block: nn.Module) -> None:
    """Raise unless ``block`` is causal: a 'same' convolution's output needs future steps."""
    if not block.causal:
        raise NotImplementedError(f"family '{block.family}' streams only in its causal form; "
                                  "its 'same' convolutions see future steps.")
