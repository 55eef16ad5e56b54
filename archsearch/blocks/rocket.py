"""Random-kernel convolution: MiniRocket (Dempster, Schmidt & Webb 2021, "MINIROCKET: a very fast
(almost) deterministic transform for time series classification") with its ridge readout, after
the authors' code and tsai's ``MiniRocket`` PyTorch model.

Glossary (d = d_model; F = ``n_features``; n = features of one kernel at one slot):
    kernel    one of the 84 fixed kernels of 9 taps: weight 2 at three taps and -1 at the other
              six, all C(9, 3) choices; the weights sum to zero, so a kernel ignores a level
    slot      one dilation r with all 84 kernels at it, kernel k of slot s on embedded
              channel (84 s + k) mod d; the F / 84
              features of a kernel are dealt over ``max_dilations`` slots (MiniRocket: 32);
              the slots' dilations are spread exponentially from 1 to (length - 1) / 8, so the
              widest kernel (8 r + 1 steps) spans the longest training series
    bias      a feature's threshold: a quantile of its convolution's output on one training
              series (MiniRocket's quantiles: the fractional parts of i x golden ratio)
    PPV       proportion of positive values: the share of a sequence's valid steps at which the
              convolution exceeds the bias, in [0, 1]; causal, the running share over the valid
              steps so far
    padded    as MiniRocket, half the (slot, kernel) pairs count every valid step (their
              convolution sees zeros beyond the sequence) and half only the steps whose 9 taps
              all lie inside it

Nothing trains by gradient (:attr:`RocketBlock.readout` is ``ridge``): the kernels are fixed by
construction, the dilations, biases and the features' mean and scale by
:meth:`RocketBlock.init_from_data`, a data-dependent initialisation on a sample of the training
split (deterministic given the seed), and the model's head is a ridge model fitted in closed
form on the standardised features of the training split, its penalty chosen by leave-one-out
cross-validation, as MiniRocket's classifier and regressor (the trial does it:
``archsearch.trial.runner``). A head trained by gradient on 10,000 features of a few dozen
series overfits where ridge does not (PickupGestureWiimoteZ: 0.78 test accuracy trained,
0.86 with ridge).

The block sees d embedded channels (the model's input Linear, a fixed random projection), not
the raw series. For a univariate series an embedded channel is w x + c: the zero-sum kernels
cancel c (away from the zero padding) and a bias taken from the same channel's outputs absorbs
w, so the features are MiniRocket's on x (with w < 0, one minus them). For several input
channels each (slot, kernel) convolves its own random mix of them, where MiniRocket sums a
random subset.

The block outputs the standardised features (``out_dim`` = F wide) at every step: the same
vector at every step of a sequence (non-causal); causal, those of the running PPV, so the step
path streams. The model's pooling is ``last``: the whole sequence's (or so far's) features.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from archsearch.blocks.base import check_positive, lengths_to_mask
from archsearch.blocks.convolution import ConvFamily, check_can_step
from archsearch.blocks.registry import register
from archsearch.errors import SpaceError
from archsearch.hparams import RocketConfig

TAPS = 9
KERNELS = 84  # C(9, 3)
GOLDEN = (math.sqrt(5) + 1) / 2
SCALE_EPS = 1e-4  # added to a feature's variance: a feature constant on the sample stays finite
STATS_CHUNK = 256  # series per forward while the initialisation gathers feature statistics


def kernel_weights() -> torch.Tensor:
    """The 84 MiniRocket kernels: (84, 1, 9), -1 everywhere and 2 at three taps."""
    weights = -torch.ones(KERNELS, 1, TAPS)
    for k, taps in enumerate(itertools.combinations(range(TAPS), 3)):
        weights[k, 0, list(taps)] = 2.0
    return weights


def slot_sizes(config: RocketConfig) -> list[int]:
    """Features per kernel at each slot: F // 84 dealt as evenly as possible, earlier slots
    first (MiniRocket deals its remainder so too)."""
    per_kernel = config.n_features // KERNELS
    slots = min(per_kernel, config.max_dilations)
    return [per_kernel // slots + (i < per_kernel % slots) for i in range(slots)]


def quantiles(n: int) -> torch.Tensor:
    """MiniRocket's low-discrepancy quantiles: the fractional parts of i x golden ratio."""
    return torch.tensor([(i * GOLDEN) % 1 for i in range(1, n + 1)])  # (n,)


def masked_quantiles(values: torch.Tensor, valid: torch.Tensor, q: torch.Tensor
                     ) -> torch.Tensor:
    """Per row, the ``q`` quantiles (linear interpolation, as ``torch.quantile``) of its valid
    values: values, valid (K, T), q (K, n) -> (K, n); 0 for a row without valid values."""
    count = valid.sum(-1, keepdim=True)  # (K, 1)
    ordered = values.masked_fill(~valid, torch.inf).sort(-1).values  # (K, T) valid first
    pos = q * (count - 1).clamp(min=0)  # (K, n)
    lo = pos.floor().long()
    hi = torch.minimum(lo + 1, (count - 1).clamp(min=0))  # (K, n)
    low, high = ordered.gather(-1, lo), ordered.gather(-1, hi)  # (K, n)
    return torch.where(count > 0, torch.lerp(low, high, pos - lo), 0.0)  # (K, n)


@register("rocket")
class RocketBlock(ConvFamily):
    Config = RocketConfig
    readout = "ridge"

    def __init__(self, d_model: int, config: RocketConfig, causal: bool, dropout: float) -> None:
        super().__init__(d_model, config, causal, dropout)
        self.sizes = slot_sizes(config)
        n_features = KERNELS * sum(self.sizes)
        self.register_buffer("kernels", kernel_weights(), persistent=False)  # (84, 1, 9)
        slot_kernel = torch.arange(len(self.sizes) * KERNELS).view(-1, KERNELS)  # (S, 84)
        self.register_buffer("channels", slot_kernel % d_model, persistent=False)  # (S, 84)
        # Set by init_from_data; until then every slot at dilation 1 and every bias 0.
        self.register_buffer("dilations", torch.ones(len(self.sizes), dtype=torch.long))
        self.register_buffer("biases", torch.zeros(n_features))  # (F,) slot, kernel, feature
        self.register_buffer("feature_mean", torch.zeros(n_features))  # (F,)
        self.register_buffer("feature_scale", torch.ones(n_features))  # (F,)

    @property
    def out_dim(self) -> int:
        return len(self.biases)

    @classmethod
    def check_config(cls, config: RocketConfig, causal: bool) -> None:
        check_positive(cls.family, max_dilations=config.max_dilations)
        if config.n_features < KERNELS:
            raise SpaceError(f"rocket: n_features must be >= {KERNELS} (one per kernel), got "
                             f"{config.n_features}.")

    def _slots(self) -> Iterator[tuple[int, int, torch.Tensor, torch.Tensor]]:
        """(slot, dilation, padded (84,) bool, biases (84, n)) for every slot."""
        kernel = torch.arange(KERNELS, device=self.biases.device)  # (84,)
        biases = self.biases.split([KERNELS * n for n in self.sizes])
        for s, (dilation, b) in enumerate(zip(self.dilations.tolist(), biases, strict=True)):
            yield s, dilation, (kernel + s) % 2 == 0, b.view(KERNELS, -1)  # MiniRocket's parity

    def _convolve(self, h: torch.Tensor, s: int, dilation: int, pad: bool = True
                  ) -> torch.Tensor:
        """h (B, d, T) -> slot s's 84 convolutions, each of its kernel's channel (B, 84, T),
        zero-padded causally or 'same' (``pad=False``: the valid part only)."""
        span = (TAPS - 1) * dilation
        x = h[:, self.channels[s]]  # (B, 84, T)
        if pad:
            x = F.pad(x, (span, 0) if self.causal else (span // 2, span - span // 2))
        return F.conv1d(x, self.kernels, dilation=dilation, groups=KERNELS)  # (B, 84, T)

    def _counted(self, lengths: torch.Tensor, seq_len: int, dilation: int,
                 padded: torch.Tensor) -> torch.Tensor:
        """(B, 84, T) bool: the steps each kernel's PPV counts (see ``padded``)."""
        span = (TAPS - 1) * dilation
        steps = torch.arange(seq_len, device=lengths.device)  # (T,)
        valid = lengths_to_mask(lengths, seq_len)  # (B, T)
        before, after = (span, 0) if self.causal else (span // 2, span - span // 2)
        inner = valid & (steps >= before) & (steps < (lengths - after)[:, None])  # (B, T)
        return torch.where(padded[None, :, None], valid[:, None], inner[:, None])  # (B, 84, T)

    def ppv(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """h (B, d, T) -> the PPV of every feature (B, 1, F); causal, the running PPV at every
        step (B, T, F)."""
        T = h.shape[-1]
        h = h.masked_fill(~lengths_to_mask(lengths, T)[:, None], 0.0)  # (B, d, T)
        features = []
        with torch.no_grad():  # thresholds: no gradient passes them
            for s, dilation, padded, biases in self._slots():
                counted = self._counted(lengths, T, dilation, padded)  # (B, 84, T)
                conv = self._convolve(h, s, dilation).masked_fill(~counted, -torch.inf)
                positive = conv[:, :, None] > biases[..., None]  # (B, 84, n, T) uncounted: no
                if self.causal:  # (B, 84, n, T) / (B, 84, 1, T): running shares
                    share = (positive.float().cumsum(-1)
                             / counted.float().cumsum(-1).clamp(min=1)[:, :, None])
                else:  # (B, 84, n, 1)
                    share = (positive.count_nonzero(-1)[..., None]
                             / counted.sum(-1).clamp(min=1)[:, :, None, None])
                features.append(share.flatten(1, 2))  # (B, 84 n, T or 1)
        return torch.cat(features, 1).transpose(1, 2)  # (B, T or 1, F)

    def standardise(self, ppv: torch.Tensor) -> torch.Tensor:
        """(..., F) PPV -> (..., F) at the sample's mean 0 and scale 1."""
        return (ppv - self.feature_mean) / self.feature_scale

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        y = self.standardise(self.ppv(x.transpose(1, 2), lengths))  # (B, T or 1, F)
        return y.expand(-1, x.shape[1], -1)  # (B, T, F)

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor, lengths: torch.Tensor) -> None:
        """MiniRocket's fit on a sample x (N, T, d) of embedded training series: the dilations
        from the longest, each (slot, kernel)'s biases from the quantiles of its convolution on
        one random series (the global RNG: seeded by the trial), then the features' mean and
        scale over the sample (of the whole-sequence PPV, also for the causal form)."""
        h = x.transpose(1, 2)  # (N, d, T)
        h = h.masked_fill(~lengths_to_mask(lengths, h.shape[-1])[:, None], 0.0)
        longest = int(lengths.max())
        top = math.log2(max(1.0, (longest - 1) / (TAPS - 1)))
        exponents = torch.linspace(0, top, len(self.sizes))
        self.dilations.copy_((2 ** exponents).floor().long())
        q = quantiles(len(self.biases)).to(self.biases.device).split(
            [KERNELS * n for n in self.sizes])
        fitted, T, diagonal = [], h.shape[-1], torch.arange(KERNELS)
        for (s, dilation, padded, _), q_slot in zip(self._slots(), q, strict=True):
            pick = torch.randint(len(h), (KERNELS,)).to(h.device)  # one series per kernel
            conv = self._convolve(h[pick], s, dilation)  # (84, 84, T): row k is series pick[k]
            counted = self._counted(lengths[pick], T, dilation, padded)  # (84, 84, T)
            fitted.append(masked_quantiles(conv[diagonal, diagonal], counted[diagonal, diagonal],
                                           q_slot.view(KERNELS, -1)))  # (84, n) kernel k
        self.biases.copy_(torch.cat([b.flatten() for b in fitted]))
        ppv = torch.cat([self._whole_ppv(x[i:i + STATS_CHUNK], lengths[i:i + STATS_CHUNK])
                         for i in range(0, len(x), STATS_CHUNK)])  # (N, F)
        self.feature_mean.copy_(ppv.mean(0))
        self.feature_scale.copy_(torch.sqrt(ppv.var(0, unbiased=False) + SCALE_EPS))

    def _whole_ppv(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, T, d) -> the PPV over each whole sequence (B, F)."""
        ppv = self.ppv(x.transpose(1, 2), lengths)  # (B, T or 1, F)
        return ppv[torch.arange(len(x)), (lengths - 1) if self.causal else 0]  # (B, F)

    # -- streaming (causal form) ---------------------------------------------------------------

    def init_state(self, batch: int, device: torch.device) -> Any:
        """(the last 8 r_max inputs (B, d, 8 r_max), positive counts (B, F), steps seen)."""
        check_can_step(self)
        span = (TAPS - 1) * int(self.dilations.max())
        return (torch.zeros(batch, self.d_model, span, device=device),
                torch.zeros(batch, len(self.biases), device=device), 0)

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        past, positives, t = state
        window = torch.cat([past, x_t[..., None]], dim=-1)  # (B, d, 8 r_max + 1)
        width = window.shape[-1]
        counted_all, new = [], []
        for s, dilation, padded, biases in self._slots():
            taps = window[..., width - (TAPS - 1) * dilation - 1:]  # (B, d, 8 r + 1)
            conv = self._convolve(taps, s, dilation, pad=False)[..., 0]  # (B, 84)
            span = (TAPS - 1) * dilation
            counts = padded | (t >= span)  # (84,) inner kernels: once all taps are inside
            new.append(((conv[..., None] > biases) & counts[:, None]).flatten(1))  # (B, 84 n)
            seen = torch.where(padded, t + 1, max(0, t + 1 - span))  # (84,) steps counted
            counted_all.append(seen.repeat_interleave(biases.shape[1]))  # (84 n,)
        positives = positives + torch.cat(new, 1)  # (B, F)
        share = positives / torch.cat(counted_all).clamp(min=1)  # (B, F)
        return self.standardise(share), (window[..., 1:], positives, t + 1)  # (B, F)
