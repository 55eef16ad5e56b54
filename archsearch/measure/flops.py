"""FLOPs of one forward: PyTorch's own counter plus analytic counts where it is blind.

``torch.utils.flop_counter.FlopCounterMode`` counts matrix products (and convolutions and
attention) from op shapes, 2 FLOPs per multiply-add. Two kinds of kernels escape it, so they are
counted analytically and added, which keeps FLOPs comparable across families:

- fused recurrent kernels (``nn.RNN``/``nn.LSTM``/``nn.GRU``, float or dynamically quantized):
  on CPU the LSTM kernel counts 0 while the GRU is partly counted, and cuDNN counts 0. Whatever
  the counter attributed to such a module is dropped and replaced by
  ``2 * gates * H * (I_l + H)`` per valid token, layer and direction (gates: 1 RNN, 3 GRU,
  4 LSTM; I_l the layer's input width; packed sequences count valid tokens only). Element-wise
  gate arithmetic is not counted, as the counter counts none anywhere.
- FFTs (the S4D convolution): ``2.5 * N * log2(N)`` per real transform of length N (half the
  classic ``5 N log2 N`` of a complex one), ``5 N log2 N`` per complex transform.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence
from torch.utils.flop_counter import FlopCounterMode

aten = torch.ops.aten

FLOPS_METHOD = ("torch.utils.flop_counter.FlopCounterMode (2 per multiply-add) + analytic "
                "fused RNN/LSTM/GRU (2*gates*H*(I+H) per token, layer, direction) + analytic FFT "
                "(2.5 N log2 N real, 5 N log2 N complex)")

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}


def _fft_flops(shape: Sequence[int], dim: Sequence[int], per_point: float) -> int:
    total = 0.0
    batch = math.prod(shape)
    for d in dim:
        n = shape[d]
        if n > 1:
            total += per_point * (batch // n) * n * math.log2(n)
    return int(total)


def _r2c_flop(input_shape, dim, normalization, onesided, *args, out_shape=None,  # noqa: ANN001
              **kwargs) -> int:
    return _fft_flops(input_shape, dim, 2.5)


def _c2r_flop(input_shape, dim, normalization, last_dim_size, *args,  # noqa: ANN001
              out_shape=None, **kwargs) -> int:  # noqa: ANN001
    return _fft_flops(out_shape, dim, 2.5)


def _c2c_flop(input_shape, dim, normalization, forward, *args, out_shape=None,  # noqa: ANN001
              **kwargs) -> int:
    return _fft_flops(input_shape, dim, 5.0)


FFT_FORMULAS = {
    aten._fft_r2c: _r2c_flop,
    aten._fft_c2r: _c2r_flop,
    aten._fft_c2c: _c2c_flop,
}


def is_fused_rnn(module: nn.Module) -> bool:
    """A fused recurrent module: ``nn.RNNBase`` or its dynamically quantized twin."""
    return getattr(module, "mode", None) in _GATES and hasattr(module, "num_layers")


def rnn_flops(module: nn.Module, tokens: int) -> int:
    """Analytic FLOPs of ``module`` over ``tokens`` valid (batch x time) steps."""
    gates = _GATES[module.mode]
    H, directions = module.hidden_size, 2 if module.bidirectional else 1
    total = 0
    for layer in range(module.num_layers):
        width = module.input_size if layer == 0 else H * directions
        total += 2 * gates * H * (width + H) * directions
    return total * tokens


def _tokens(value: object, batch_first: bool) -> int:
    if isinstance(value, PackedSequence):
        return int(value.batch_sizes.sum())
    assert isinstance(value, torch.Tensor)
    if value.dim() == 2:  # unbatched (T, I)
        return value.shape[0]
    return value.shape[0] * value.shape[1]


def count_flops(model: nn.Module, *inputs: torch.Tensor) -> int:
    """FLOPs of one no-grad forward ``model(*inputs)`` (see the module docstring)."""
    rnns = {name: m for name, m in model.named_modules() if is_fused_rnn(m)}
    analytic = [0]

    def hook(module: nn.Module, args: tuple, output: object) -> None:
        analytic[0] += rnn_flops(module, _tokens(args[0], getattr(module, "batch_first", False)))

    handles = [m.register_forward_hook(hook) for m in rnns.values()]
    try:
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=FFT_FORMULAS) as c:
            model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    per_module = c.get_flop_counts()
    root = type(model).__name__
    counted_inside = sum(sum(per_module.get(f"{root}.{name}", {}).values()) for name in rnns)
    return int(c.get_total_flops()) - counted_inside + analytic[0]
