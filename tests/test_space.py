from pathlib import Path

import pytest

from archsearch.errors import SpaceError
from archsearch.space import load_space
from archsearch.types import Constraints


def test_default_space_loads():
    space = load_space()
    assert {"lstm", "gru", "transformer"} <= set(space.families)
    assert any(p.name == "lr" and p.log for p in space.training)


def test_streaming_rule_pins_bidirectional():
    space = load_space().under(Constraints(streaming=True))
    param = next(p for p in space.families["lstm"] if p.name == "bidirectional")
    assert param.type == "fixed" and param.value is False


@pytest.mark.parametrize("text, fragment", [
    ("[1, 2]", "(top level)"),
    ("families: {}", "families: a non-empty mapping"),
    ("families: {mamba9: {}}", "families.mamba9: unknown family"),
    ("families: {lstm: {n_layers: {type: int, low: 3, high: 1}}}",
     "families.lstm.n_layers: low (3) must not exceed high (1)"),
    ("families: {lstm: {n_layers: {type: int, low: 1.5, high: 2}}}",
     "families.lstm.n_layers.low: must be a finite int"),
    ("families: {lstm: {widht: 3}}", "families.lstm.widht: unknown parameter"),
    ("families: {lstm: {n_layers: {type: discrete}}}", "families.lstm.n_layers.type"),
    ("training: {lr: {type: float, low: 0, high: 1, log: true}}\nfamilies: {lstm: {}}",
     "training.lr.low: must be > 0 on a log scale"),
    ("shared: {d_model: {type: ordinal, choices: []}}\nfamilies: {lstm: {}}",
     "shared.d_model.choices: must be a non-empty list"),
    ("families: {lstm: {}}\nrules: [{id: x, when: {speed: 1}, fix: {n_layers: 1}}]",
     "rules[0].when"),
    ("families: [lstm", "not valid YAML"),
])
def test_space_errors_name_file_and_key(tmp_path: Path, text, fragment):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(SpaceError) as info:
        load_space(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def test_missing_space_file(tmp_path):
    with pytest.raises(SpaceError, match="does not exist"):
        load_space(tmp_path / "nope.yaml")


def test_spaces_validate_command(tmp_path, capsys):
    from archsearch.cli import main

    assert main(["spaces", "validate", "search_spaces/default.yaml"]) == 0
    assert "valid" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("families: {gru: {n_layers: {type: int, low: 1}}}")
    assert main(["spaces", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "families.gru.n_layers.high: must be a finite int" in err and "Traceback" not in err


def test_smallest_configurations_take_the_low_ends_and_every_categorical_combination():
    space = load_space().under(Constraints(streaming=True))
    configs = list(space.smallest("attn_rnn"))
    # cell x window x pooling x quantize x weight_decay; series_norm pinned by streaming
    assert len(configs) == 2 * 3 * 2 * 2 * 2
    for arch, train in configs:
        assert arch.family == "attn_rnn" and train.batch_size == 16 and train.lr == 3.0e-4
        assert arch.hparams["d_model"] == 32 and arch.hparams["n_layers"] == 1
        assert arch.hparams["n_heads"] == 2 and arch.hparams["dropout"] == 0.0
        assert arch.hparams["series_norm"] is False
    assert {arch.hparams["window"] for arch, _ in configs} == {16, 64, 0}
    fcn = {arch.hparams["pooling"] for arch, _ in load_space().smallest("fcn")}
    assert fcn == {"mean"}  # a family's own setting of a shared parameter
