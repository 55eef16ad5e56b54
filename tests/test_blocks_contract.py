"""One contract every family keeps, run over every registered family and representative configs.

Shapes for the three task heads, gradients reaching every parameter, causality, step path equal
to the parallel path, padded batches equal to unpadded ones, seeded determinism; plus the int8
and mixture-of-experts options, the optimiser hints and the default search space.
"""

from __future__ import annotations

import copy
import dataclasses
import random

import pytest
import torch

from archsearch.blocks import (
    FAMILIES,
    build_model,
    inference_model,
    is_quantized,
    moe_aux_loss,
    param_groups,
)
from archsearch.blocks.ssm_selective import linear_scan, loop_scan
from archsearch.errors import SpaceError
from archsearch.hparams import FAMILY_HPARAMS
from archsearch.space import load_space
from archsearch.types import ArchConfig, ModelIO, TaskKind

D, T, B, F = 16, 12, 3, 3
LENGTHS = [T, 9, 5]

# id -> (family, hparams); "bidirectional" cases are non-causal only.
CASES: dict[str, tuple[str, dict]] = {
    "rnn": ("rnn", {"n_layers": 2}),
    "lstm": ("lstm", {"n_layers": 2}),
    "lstm-bi": ("lstm", {"bidirectional": True}),
    "gru": ("gru", {}),
    "gru-bi": ("gru", {"n_layers": 2, "bidirectional": True}),
    "transformer-pre-sin": ("transformer", {"n_layers": 2, "n_heads": 2}),
    "transformer-post-learned": ("transformer", {"norm": "post", "pos_encoding": "learned",
                                                 "max_len": 32}),
    "transformer-rotary-moe": ("transformer", {"pos_encoding": "rotary", "moe_experts": 4,
                                               "moe_top_k": 2}),
    "tf_enc_rnn_dec": ("tf_enc_rnn_dec", {"n_heads": 2, "dec_layers": 2}),
    "tf_enc_rnn_dec-rotary-moe": ("tf_enc_rnn_dec", {"pos_encoding": "rotary",
                                                     "moe_experts": 3, "moe_top_k": 1}),
    "attn_rnn-gru-window": ("attn_rnn", {"n_layers": 2, "window": 4}),
    "attn_rnn-lstm-full": ("attn_rnn", {"cell": "lstm", "window": 0}),
    "rnn_then_tf": ("rnn_then_tf", {"norm": "post"}),
    "rnn_then_tf-gru-bi-moe": ("rnn_then_tf", {"cell": "gru", "bidirectional": True,
                                               "moe_experts": 2, "moe_top_k": 2}),
    "linear_attention": ("linear_attention", {"n_heads": 2}),
    "linear_attention-nopos": ("linear_attention", {"n_layers": 1, "pos_encoding": "none"}),
    "ssm-s4d": ("ssm", {"kind": "s4d", "d_state": 8}),
    "ssm-selective": ("ssm", {"kind": "selective", "d_state": 8}),
    "tcn": ("tcn", {"n_layers": 3, "kernel_size": 2}),
    "fcn": ("fcn", {}),
    "fcn-narrow": ("fcn", {"width_mult": 1}),
    "resnet": ("resnet", {"n_blocks": 2}),
    "resnet-1": ("resnet", {"n_blocks": 1}),
    "inception": ("inception", {"n_modules": 3, "kernel_size": 8}),
    "inception-7-k40": ("inception", {"n_modules": 7, "kernel_size": 40}),
    "lite": ("lite", {"kernel_size": 8}),
    "lite-k40": ("lite", {}),
    "rocket": ("rocket", {"n_features": 168, "max_dilations": 2}),
}
CAUSAL_CASES = [k for k, (_, hp) in CASES.items() if not hp.get("bidirectional")]
INT8_CASES = ["rnn", "lstm", "gru-bi", "transformer-rotary-moe", "tf_enc_rnn_dec",
              "attn_rnn-gru-window", "linear_attention", "ssm-selective", "ssm-s4d", "tcn",
              "fcn", "resnet", "inception", "lite", "rocket"]
MUST_STEP = {"linear_attention", "ssm"}  # the issue requires a step path for these


def make(case: str, causal: bool = False, task: TaskKind = TaskKind.REGRESSION,
         n_outputs: int = 1, seed: int = 0, **shared: object) -> torch.nn.Module:
    family, hparams = CASES[case]
    if FAMILIES[family].readout == "ridge":  # its every step has the sequence's features
        shared = {**shared, "pooling": "last"}
    torch.manual_seed(seed)
    io = ModelIO(n_features=F, task=task, n_outputs=n_outputs, max_len=T, causal=causal)
    return build_model(ArchConfig(family, {"d_model": D, **shared, **hparams}), io)


def padded_batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, F) inputs whose padding holds large garbage, and their lengths (B,)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, F, generator=g)
    for i, length in enumerate(LENGTHS):
        x[i, length:] = 50.0 * torch.randn(T - length, F, generator=g)
    return x, torch.tensor(LENGTHS)


def test_every_family_is_registered_and_covered() -> None:
    expected = {"rnn", "lstm", "gru", "transformer", "tf_enc_rnn_dec", "attn_rnn", "rnn_then_tf",
                "linear_attention", "ssm", "tcn", "fcn", "resnet", "inception", "lite",
                "rocket"}
    assert set(FAMILIES) == expected == set(FAMILY_HPARAMS)  # a table entry has its block
    assert {family for family, _ in CASES.values()} == expected


@pytest.mark.parametrize("task,n_outputs", [(TaskKind.CLASSIFICATION, 4),
                                            (TaskKind.REGRESSION, 1), (TaskKind.FORECAST, 6)])
@pytest.mark.parametrize("case", CASES)
def test_shapes_for_every_head(case: str, task: TaskKind, n_outputs: int) -> None:
    model = make(case, task=task, n_outputs=n_outputs, pooling="mean").eval()
    x, lengths = padded_batch()
    with torch.no_grad():
        out = model(x, lengths)
        assert out.shape == (B, n_outputs)
        assert torch.isfinite(out).all()
        assert model(x).shape == (B, n_outputs)  # lengths are optional
        hidden = model.block(model.embed(x), lengths)
        assert hidden.shape == (B, T, model.block.out_dim)
        assert model.block.out_dim == D or model.fits_in_closed_form


@pytest.mark.parametrize("case", CASES)
def test_gradients_reach_every_parameter(case: str) -> None:
    model = make(case, pooling="mean").train()
    if model.fits_in_closed_form:  # fixed features and a ridge head: nothing trains by gradient
        assert not any(p.requires_grad for p in model.parameters())
        return
    x, lengths = padded_batch()
    out = model(x, lengths)
    loss = (out * torch.randn_like(out)).sum() + 0.01 * moe_aux_loss(model)
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"
        assert param.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


@pytest.mark.parametrize("case", CAUSAL_CASES)
def test_causal_outputs_ignore_the_future(case: str) -> None:
    model = make(case, causal=True).eval()
    block = model.block
    h = torch.randn(B, T, D)
    full = torch.full((B,), T)
    t = 6
    changed = h.clone()
    changed[:, t + 1:] = 10.0 * torch.randn(B, T - t - 1, D)
    with torch.no_grad():
        before, after = block(h, full), block(changed, full)
    torch.testing.assert_close(after[:, :t + 1], before[:, :t + 1], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(after[:, t + 1:], before[:, t + 1:])


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("causal", [False, True])
def test_padded_batch_equals_unpadded_sequences(case: str, causal: bool) -> None:
    if causal and case not in CAUSAL_CASES:
        pytest.skip("bidirectional configs cannot be causal")
    model = make(case, causal=causal, pooling="mean").eval()
    x, lengths = padded_batch()
    with torch.no_grad():
        hidden = model.block(model.embed(x), lengths)  # (B, T, D)
        pooled = model(x, lengths)  # (B, 1)
        for i, length in enumerate(LENGTHS):
            alone = x[i:i + 1, :length]
            one = torch.tensor([length])
            torch.testing.assert_close(hidden[i, :length],
                                       model.block(model.embed(alone), one)[0],
                                       atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(pooled[i], model(alone, one)[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("case", CAUSAL_CASES)
def test_step_path_equals_parallel_path(case: str) -> None:
    model = make(case, causal=True).eval()
    family = CASES[case][0]
    if not model.can_step:
        assert family not in MUST_STEP, f"{family} must have a step path"
        with pytest.raises(NotImplementedError):
            model.block.init_state(B, torch.device("cpu"))
        return
    h = torch.randn(B, T, D)
    with torch.no_grad():
        parallel = model.block(h, torch.full((B,), T))  # (B, T, D)
        state = model.block.init_state(B, h.device)
        steps = []
        for t in range(T):
            y, state = model.block.step(h[:, t], state)
            steps.append(y)
    assert (torch.stack(steps, 1) - parallel).abs().max() <= 1e-4
    # The whole model streams too: its step output is its forward on the prefix so far.
    x = torch.randn(B, T, F)
    with torch.no_grad():
        state = model.init_state(B, x.device)
        for t in range(T):
            out, state = model.step(x[:, t], state)
            if t in (0, T // 2, T - 1):
                assert (out - model(x[:, :t + 1])).abs().max() <= 1e-4


def test_streaming_is_offered_where_the_family_has_it() -> None:
    streams = {case for case in CAUSAL_CASES if make(case, causal=True).can_step}
    assert {"linear_attention", "ssm-s4d", "ssm-selective", "lstm", "tcn",
            "attn_rnn-gru-window", "fcn", "resnet", "inception", "lite", "rocket"} <= streams
    assert not make("lstm-bi").can_step
    assert not make("linear_attention", causal=False).can_step
    for case in ("fcn", "resnet", "inception", "lite", "rocket"):  # 'same' convolutions
        # see the future
        assert not make(case, causal=False).can_step
        with pytest.raises(NotImplementedError, match="causal form"):
            make(case, causal=False).block.init_state(B, torch.device("cpu"))


CONV_CASES = ["fcn", "resnet", "inception", "lite"]  # BatchNorm: statistics of valid steps


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("causal", [False, True])
def test_padding_reaches_neither_outputs_nor_statistics_in_training(case: str,
                                                                      causal: bool) -> None:
    x, lengths = padded_batch()
    zeroed = x.clone()
    for i, length in enumerate(LENGTHS):
        zeroed[i, length:] = 0.0
    a, b = make(case, causal=causal).train(), make(case, causal=causal).train()
    ha, hb = a.block(a.embed(x), lengths), b.block(b.embed(zeroed), lengths)  # (B, T, D)
    for i, length in enumerate(LENGTHS):
        torch.testing.assert_close(ha[i, :length], hb[i, :length], atol=1e-5, rtol=1e-4)
    for (name, buf_a), buf_b in zip(a.named_buffers(), b.buffers(), strict=True):
        torch.testing.assert_close(buf_a, buf_b, atol=1e-5, rtol=1e-4, msg=name)


def test_masked_batchnorm_normalises_with_valid_steps_only() -> None:
    from archsearch.blocks.convolution import MaskedBatchNorm1d, channel_mask

    bn = MaskedBatchNorm1d(4, momentum=1.0).train()  # running statistics = this batch's
    x = torch.randn(B, 4, T, generator=torch.Generator().manual_seed(3))
    mask = channel_mask(torch.tensor(LENGTHS), T)  # (B, 1, T)
    x = x.masked_fill(~mask, 1e3)  # padding far off the data's range
    y = bn(x, mask)  # (B, 4, T)
    valid = x.transpose(1, 2)[mask[:, 0]]  # (N, 4)
    mean, var = valid.mean(0), valid.var(0, unbiased=False)
    torch.testing.assert_close(bn.running_mean, mean)
    torch.testing.assert_close(bn.running_var, valid.var(0, unbiased=True))
    expected = (valid - mean) / torch.sqrt(var + bn.eps)  # weight 1, bias 0
    torch.testing.assert_close(y.transpose(1, 2)[mask[:, 0]], expected, atol=1e-5, rtol=1e-4)
    assert (y.transpose(1, 2)[~mask[:, 0]] == 0).all()
    bn.eval()  # eval: the running statistics at every step; the step path the same
    torch.testing.assert_close(bn(x, mask)[:, :, 0], bn.step(x[:, :, 0]))


@pytest.mark.parametrize("case", CASES)
def test_seeded_runs_are_deterministic(case: str) -> None:
    x, lengths = padded_batch()
    target = torch.randn(B, 1)

    def run() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model = make(case, seed=7, dropout=0.1)
        torch.manual_seed(7)
        if not model.fits_in_closed_form:  # else nothing trains by gradient
            optimizer = torch.optim.AdamW(param_groups(model, 1e-2, 0.01))
            for _ in range(2):
                loss = torch.nn.functional.mse_loss(model(x, lengths), target)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        model.eval()
        with torch.no_grad():
            return model(x, lengths), [p.detach().clone() for p in model.parameters()]

    (out1, params1), (out2, params2) = run(), run()
    assert torch.equal(out1, out2)
    assert all(torch.equal(a, b) for a, b in zip(params1, params2, strict=True))


@pytest.mark.parametrize("case", INT8_CASES)
def test_int8_copy_is_quantized_and_close_to_float(case: str) -> None:
    model = make(case, causal=case in CAUSAL_CASES, quantize="int8").eval()
    deployed = inference_model(model)
    assert deployed is not model and is_quantized(deployed) and not is_quantized(model)
    assert inference_model(deployed) is deployed
    # Padding of the data's own range: int8 activation scales are per tensor, so padding of a
    # much larger magnitude would coarsen every token's quantization (see quantize.py).
    x = torch.randn(B, T, F, generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor(LENGTHS)
    with torch.no_grad():
        exact, approx = model(x, lengths), deployed(x, lengths)
        assert approx.shape == exact.shape
        scale = exact.abs().max().clamp(min=1.0)
        assert (approx - exact).abs().max() <= 0.05 * scale
        # Padding and other sequences reach a sequence's int8 output only as quantization noise.
        one = deployed(x[1:2, :LENGTHS[1]], torch.tensor([LENGTHS[1]]))[0]
        assert (approx[1] - one).abs().max() <= 0.05 * scale
        assert torch.equal(deployed(x, lengths), approx)  # deterministic
        if deployed.can_step:
            state = deployed.init_state(1, x.device)
            for t in range(LENGTHS[1]):
                out, state = deployed.step(x[1:2, t], state)
            assert (out[0] - one).abs().max() <= 0.05 * scale


def test_int8_leaves_training_in_float() -> None:
    model = make("lstm", quantize="int8")
    assert not is_quantized(model)
    assert any(p.requires_grad for p in model.parameters())


def test_moe_routes_top_k_and_reports_a_balance_loss() -> None:
    model = make("transformer-rotary-moe").train()
    x, lengths = padded_batch()
    model(x, lengths)
    aux = moe_aux_loss(model)
    assert aux.requires_grad and torch.isfinite(aux) and aux.item() >= 0.99  # >= 1 by Cauchy
    assert moe_aux_loss(make("lstm")).item() == 0.0
    model.eval()
    copy.deepcopy(inference_model(make("transformer-rotary-moe", quantize="int8")))


@pytest.mark.parametrize("kind,names", [
    ("s4d", {"log_dt", "log_A_real", "A_imag"}),
    ("selective", {"A_log", "dt_proj.bias"}),
])
def test_ssm_parameters_carry_optimizer_hints(kind: str, names: set[str]) -> None:
    model = make(f"ssm-{kind}")
    for candidate in (model, copy.deepcopy(model)):  # hints survive a deep copy
        groups = param_groups(candidate, lr=1e-2, weight_decay=0.05)
        ids = [id(p) for g in groups for p in g["params"]]
        assert sorted(ids) == sorted(id(p) for p in candidate.parameters())  # each once
        slow = next(g for g in groups if g["lr"] == pytest.approx(1e-3))
        assert slow["weight_decay"] == 0.0
        slow_names = {n.rsplit(".", 1)[-1] if "dt_proj" not in n else "dt_proj.bias"
                      for n, p in candidate.named_parameters()
                      if any(p is q for q in slow["params"])}
        assert slow_names == names
        default = next(g for g in groups if g["lr"] == 1e-2 and g["weight_decay"] == 0.05)
        assert len(default["params"]) > 0
    assert len(param_groups(make("lstm"), 1e-3, 0.0)) == 1


@pytest.mark.parametrize("length,chunk", [(1, None), (7, None), (50, None), (64, 16), (65, 16)])
def test_chunked_scan_equals_the_loop_with_gradients(length: int, chunk: int | None) -> None:
    g = torch.Generator().manual_seed(length)
    a = torch.rand(2, length, 3, 4, generator=g).requires_grad_()
    b = torch.randn(2, length, 3, 4, generator=g).requires_grad_()
    fast, slow = linear_scan(a, b, chunk), loop_scan(a, b)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    weights = torch.randn_like(fast)
    grads_fast = torch.autograd.grad((fast * weights).sum(), (a, b))
    grads_slow = torch.autograd.grad((slow * weights).sum(), (a, b))
    for gf, gs in zip(grads_fast, grads_slow, strict=True):
        torch.testing.assert_close(gf, gs, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family,hparams,message", [
    ("lstm", {"bidirectional": True}, "bidirectional"),
    ("gru", {"bidirectional": True}, "bidirectional"),
    ("rnn_then_tf", {"bidirectional": True}, "bidirectional"),
    ("ssm", {"kind": "s5"}, "kind must be one of"),
    ("ssm", {"kind": "s4d", "d_state": 7}, "even d_state"),
    ("ssm", {"kind": "s4d", "expand": 4}, "kind=selective only"),
    ("transformer", {"pos_encoding": "alibi"}, "pos_encoding must be one of"),
    ("transformer", {"moe_experts": 1}, "moe_experts"),
    ("transformer", {"moe_experts": 2, "moe_top_k": 3}, "moe_top_k"),
    ("transformer", {"n_heads": 3}, "divisible"),
    ("transformer", {"n_heads": 8, "pos_encoding": "rotary"}, "even head size"),
    ("attn_rnn", {"window": -1}, "window"),
    ("attn_rnn", {"cell": "rnn"}, "cell must be one of"),
    ("tcn", {"kernel_size": 1}, "kernel_size"),
    ("linear_attention", {"n_layers": 0}, "n_layers must be >= 1"),
    ("tcn", {"dilation": 2}, "does not take dilation"),
    ("lstm", {"quantize": "int4"}, "quantize must be one of"),
    ("fcn", {"width_mult": 0}, "width_mult must be >= 1"),
    ("fcn", {"kernel_size": 8}, "does not take kernel_size"),
    ("resnet", {"n_blocks": 0}, "n_blocks must be >= 1"),
    ("inception", {"kernel_size": 3}, "kernel_size must be >= 4"),
    ("inception", {"n_modules": 0}, "n_modules must be >= 1"),
    ("inception", {"d_model": 2}, "d_model must be >= 4"),
    ("lite", {"kernel_size": 2}, "kernel_size must be >= 4"),
    ("rocket", {"n_features": 83}, "n_features must be >= 84"),
    ("rocket", {"max_dilations": 0}, "max_dilations must be >= 1"),
])
def test_invalid_configs_are_refused_with_a_reason(family: str, hparams: dict,
                                                   message: str) -> None:
    io = ModelIO(F, TaskKind.REGRESSION, 1, T, causal=True)
    d_model = 24 if hparams.get("n_heads") == 8 else D
    with pytest.raises(SpaceError, match=message):
        build_model(ArchConfig(family, {"d_model": d_model, **hparams}), io)


def _sample(param, rng: random.Random) -> object:  # noqa: ANN001
    if param.type == "fixed":
        return param.value
    if param.type in ("categorical", "ordinal"):
        return rng.choice(param.choices)
    if param.type == "int":
        return rng.randrange(int(param.low), int(param.high) + 1, param.step)
    return rng.uniform(param.low, param.high)


@pytest.mark.parametrize("streaming", [False, True])
def test_every_default_space_config_builds_and_runs(streaming: bool) -> None:
    from archsearch.types import Constraints

    space = load_space().under(Constraints(streaming=streaming))
    assert set(space.families) == set(FAMILIES)
    rng = random.Random(0)
    io = ModelIO(F, TaskKind.REGRESSION, 1, T, causal=streaming)
    x, lengths = padded_batch()
    for family, params in sorted(space.families.items()):
        for _ in range(6):
            shared = {p.name: _sample(p, rng) for p in space.shared}
            own = {p.name: _sample(p, rng) for p in params}
            # As deployed: the int8 copy when the draw has quantize: int8.
            model = inference_model(build_model(ArchConfig(family, {**shared, **own}), io).eval())
            with torch.no_grad():
                assert torch.isfinite(model(x, lengths)).all(), (family, shared, own)


def test_config_dataclasses_are_frozen() -> None:
    for cls in FAMILIES.values():
        assert dataclasses.is_dataclass(cls.Config)
        assert cls.Config.__dataclass_params__.frozen


def _rocket_initialised(causal: bool, x: torch.Tensor, lengths: torch.Tensor
                        ) -> torch.nn.Module:
    torch.manual_seed(5)
    io = ModelIO(n_features=F, task=TaskKind.CLASSIFICATION, n_outputs=2, max_len=x.shape[1],
                 causal=causal)
    model = build_model(ArchConfig("rocket", {"d_model": D, "n_features": 336,
                                              "max_dilations": 4}), io).eval()
    torch.manual_seed(6)
    model.init_from_data(x, lengths)
    return model


@pytest.mark.parametrize("causal", [False, True])
def test_rocket_initialises_from_valid_steps_and_keeps_the_contract(causal: bool) -> None:
    """MiniRocket's fit on a ragged sample: dilations up to (longest - 1) / 8, biases and
    feature statistics blind to padding; then, with dilations > 1, padded = alone and (causal)
    step = parallel."""
    g = torch.Generator().manual_seed(2)
    T_long, lengths = 64, torch.tensor([64, 50, 33, 64, 20, 41])
    x = torch.randn(len(lengths), T_long, F, generator=g)
    garbage = x.clone()
    for i, length in enumerate(lengths):
        garbage[i, length:] = 50.0 * torch.randn(T_long - length, F, generator=g)
        x[i, length:] = 0.0
    model = _rocket_initialised(causal, garbage, lengths)
    block = model.block
    assert block.dilations.tolist() == [1, 1, 3, 7]  # floor(2 ** linspace(0, log2(63 / 8), 4))
    for name, buffer in _rocket_initialised(causal, x, lengths).block.named_buffers():
        torch.testing.assert_close(buffer, dict(block.named_buffers())[name], msg=name)
    with torch.no_grad():
        z = (block._whole_ppv(block_input := model.embed(x), lengths) - block.feature_mean) \
            / block.feature_scale  # (N, F) standardised on the sample itself
        assert z.mean(0).abs().max() < 1e-4 and z.std(0, unbiased=False).max() <= 1.0
        hidden = block(block_input, lengths)  # (N, T, D)
        for i, length in enumerate(lengths.tolist()):
            alone = block(block_input[i:i + 1, :length], lengths[i:i + 1])[0]
            torch.testing.assert_close(hidden[i, :length], alone, atol=1e-5, rtol=1e-4)
        fresh = build_model(ArchConfig("rocket", {"d_model": D, "n_features": 336,
                                                   "max_dilations": 4}), model.io).eval()
        fresh.load_state_dict(model.state_dict())  # the fitted buffers travel with the weights
        torch.testing.assert_close(fresh.block(block_input, lengths), hidden)
        if causal:
            state = block.init_state(1, x.device)
            for t in range(T_long):
                y, state = block.step(block_input[0, t][None], state)
                torch.testing.assert_close(y[0], hidden[0, t], atol=1e-5, rtol=1e-4)
