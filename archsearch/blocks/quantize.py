"""int8 for edge deployment: PyTorch dynamic quantization of recurrent and linear layers.

Decision: a configuration with ``quantize: int8`` trains in float32 and is quantized after
training, for measurement and export (post-training dynamic quantization). ``build_model``
returns the trainable float model with ``shared.quantize`` recorded; :func:`inference_model`
returns what is deployed: for ``int8`` a quantized copy in which every ``nn.Linear``, ``nn.LSTM``
and ``nn.GRU`` holds int8 weights, and activations are quantized on the fly to int8 with a scale
computed per call. ``measure_cost`` measures that copy (latency, memory, serialized size);
parameter and FLOP counts stay those of the float graph (same weights, same multiply-adds).

Not quantized: ``nn.RNN`` (not supported by PyTorch's dynamic quantization), convolutions (TCN,
the selective SSM's depthwise convolution), the SSM kernels, attention products and norms.

Caveat, measured by the contract suite: the activation scale is one per tensor, so within a
batched ``(B, T, D)`` forward a token's int8 output depends, within quantization noise, on the
range of the other tokens, including later steps and padding. Exact causality and padding
invariance hold for the float model; the int8 model keeps them only up to that noise. The step
path quantizes each step on its own and so stays causal.

torch 2.13 still ships ``torch.ao.quantization.quantize_dynamic`` but marks it deprecated in
favour of the separate torchao package (not a dependency of archsearch); its deprecation warnings
are silenced here, and :func:`int8_available` says whether this torch has it at all.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from archsearch.blocks.moe import reset_aux_losses
from archsearch.errors import SpaceError

QUANTIZE_CHOICES = ("none", "int8")
INT8_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.LSTM, nn.GRU)


def int8_available() -> bool:
    try:
        from torch.ao.quantization import quantize_dynamic  # noqa: F401
    except ImportError:
        return False
    return "x86" in torch.backends.quantized.supported_engines or \
        "fbgemm" in torch.backends.quantized.supported_engines or \
        "qnnpack" in torch.backends.quantized.supported_engines


def check_quantize(quantize: str) -> None:
    if quantize not in QUANTIZE_CHOICES:
        raise SpaceError(f"quantize must be one of {', '.join(QUANTIZE_CHOICES)}, not "
                         f"'{quantize}'.")
    if quantize == "int8" and not int8_available():
        raise SpaceError("quantize=int8 needs torch.ao.quantization.quantize_dynamic and a "
                         "quantized engine, which this PyTorch build lacks; use quantize=none.")


def quantize_int8(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with int8 dynamic quantization; ``model`` is untouched."""
    from torch.ao.quantization import quantize_dynamic

    reset_aux_losses(model)  # tensors attached to autograd graphs cannot be deep-copied
    copied = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        warnings.filterwarnings("ignore", message=".*quantized tensor.*")
        return quantize_dynamic(copied, set(INT8_LAYERS), dtype=torch.qint8)


def is_quantized(model: nn.Module) -> bool:
    """True when ``model`` contains dynamically quantized modules."""
    return any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in model.modules())


def inference_model(model: nn.Module) -> nn.Module:
    """What is deployed: the int8 copy when the model's ``shared.quantize`` says so, else it."""
    shared = getattr(model, "shared", None)
    if getattr(shared, "quantize", "none") == "int8" and not is_quantized(model):
        return quantize_int8(model)
    return model


def deploy(model: nn.Module, device: torch.device) -> tuple[nn.Module, torch.device]:
    """:func:`inference_model` of ``model``, and where it runs: ``device``, or the CPU for an
    int8 copy (PyTorch's dynamic quantization has no CUDA kernels). The deployed model is on
    that device (a float ``model`` is moved there, as ``nn.Module.to`` does)."""
    deployed = inference_model(model)
    where = device if deployed is model else torch.device("cpu")
    return deployed.to(where), where
