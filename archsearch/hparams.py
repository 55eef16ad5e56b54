"""Every family's hyperparameters, free of torch: what a search space may set.

:class:`ModelHParams` holds what every family shares; each family's own dataclass (its block's
``Config``) the rest. Kept apart from the blocks (``archsearch/blocks/<family>.py``) so that
reading a search space, and the instant recommendation that reads one, need no torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelHParams:
    """Hyperparameters every family shares; the rest go to the family's own Config."""

    d_model: int = 64
    dropout: float = 0.0
    pooling: str = "last"  # how a sequence becomes one vector (classification/regression)
    quantize: str = "none"  # "none" | "int8": post-training dynamic quantization (quantize.py)
    series_norm: bool = False  # z-normalise each series on its own before the model
    window_anchor: str = "none"  # "last": forecast the change from the window's last value


@dataclass(frozen=True)
class RecurrentConfig:
    n_layers: int = 1
    bidirectional: bool = False


@dataclass(frozen=True)
class EncoderHParams:
    """What every family with a Transformer encoder part sets for its layers."""

    n_heads: int = 4
    ff_mult: int = 4
    norm: str = "pre"  # "pre" | "post"
    moe_experts: int = 0  # 0: dense feed-forward; >= 2: mixture of experts
    moe_top_k: int = 1


@dataclass(frozen=True)
class TransformerConfig(EncoderHParams):
    n_layers: int = 2
    pos_encoding: str = "sinusoidal"  # "sinusoidal" | "learned" | "rotary"
    max_len: int = 8192  # learned positions only


@dataclass(frozen=True)
class TfEncRnnDecConfig(EncoderHParams):
    enc_layers: int = 1
    pos_encoding: str = "sinusoidal"  # "sinusoidal" | "rotary"
    dec_layers: int = 1


@dataclass(frozen=True)
class AttnRnnConfig:
    cell: str = "gru"  # "lstm" | "gru"
    n_layers: int = 1
    n_heads: int = 2
    window: int = 64  # past states each step attends to (itself included); 0: all of them


@dataclass(frozen=True)
class RnnThenTfConfig(EncoderHParams):
    cell: str = "lstm"  # "lstm" | "gru"
    rnn_layers: int = 1
    bidirectional: bool = False
    tf_layers: int = 1


@dataclass(frozen=True)
class LinearAttentionConfig:
    n_layers: int = 2
    n_heads: int = 4
    ff_mult: int = 4
    pos_encoding: str = "sinusoidal"  # "sinusoidal" | "none" (causal masking alone orders steps)


@dataclass(frozen=True)
class SSMConfig:
    kind: str = "selective"  # "s4d" | "selective"
    n_layers: int = 2
    d_state: int = 16  # N: state size per channel (s4d: N/2 complex conjugate pairs)
    expand: int = 2  # selective only: d_inner = expand * d_model
    d_conv: int = 4  # selective only: width of the causal depthwise convolution


@dataclass(frozen=True)
class TCNConfig:
    n_layers: int = 4
    kernel_size: int = 3


@dataclass(frozen=True)
class FCNConfig:
    width_mult: int = 2  # the middle ConvBlock's width in multiples of d_model (paper: 256/128)


@dataclass(frozen=True)
class ResNetConfig:
    n_blocks: int = 3


@dataclass(frozen=True)
class InceptionConfig:
    n_modules: int = 6
    kernel_size: int = 40  # the longest branch; the others k/2 and k/4


@dataclass(frozen=True)
class LITEConfig:
    kernel_size: int = 40  # the longest multiplexing convolution; the others k/2 and k/4


@dataclass(frozen=True)
class RocketConfig:
    n_features: int = 10_000  # rounded down to a multiple of 84 (MiniRocket: 10,000 -> 9,996)
    max_dilations: int = 32  # slots, i.e. dilations per kernel (MiniRocket: 32)


# Family name -> its hyperparameters; a block registers under one of these names
# (``archsearch.blocks.registry``), and its ``Config`` must be the class named here.
FAMILY_HPARAMS: dict[str, type] = {
    "rnn": RecurrentConfig,
    "lstm": RecurrentConfig,
    "gru": RecurrentConfig,
    "transformer": TransformerConfig,
    "tf_enc_rnn_dec": TfEncRnnDecConfig,
    "attn_rnn": AttnRnnConfig,
    "rnn_then_tf": RnnThenTfConfig,
    "linear_attention": LinearAttentionConfig,
    "ssm": SSMConfig,
    "tcn": TCNConfig,
    "fcn": FCNConfig,
    "resnet": ResNetConfig,
    "inception": InceptionConfig,
    "lite": LITEConfig,
    "rocket": RocketConfig,
}
