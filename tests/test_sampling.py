"""The space -> Optuna translation, without Ray: conditional sampling, and stored configs
turned back into Optuna params (warm start, resume)."""

import optuna
import pytest

from archsearch.recommend.similarity import task_distance
from archsearch.recommend.warm_start import MAX_DISTANCE, similar_winners
from archsearch.search.sampling import default_params, params_for, sample_config
from archsearch.space import load_space
from archsearch.store import TaskRecord, TrialRecord
from archsearch.types import Constraints
from tests.records import task_record, trial_record


def config_of(arch, train) -> dict:
    return {"family": arch.family, "model": dict(arch.hparams), "train": train.__dict__}


def test_sampled_configs_are_conditional_and_within_bounds():
    space = load_space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(30):
        trial = study.ask()
        arch, train = sample_config(trial, space)
        own = {p.name for p in space.families[arch.family]}
        shared = {p.name for p in space.shared}
        assert set(arch.hparams) == own | shared
        for name in trial.params:  # only this family's parameters were suggested
            assert "." not in name or name.startswith(f"{arch.family}.")
        assert 3e-4 <= train.lr <= 1e-2
        study.tell(trial, 0.0)


@pytest.mark.parametrize("seed", range(5))
def test_stored_config_round_trips_through_optuna_params(seed):
    space = load_space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    arch, train = sample_config(study.ask(), space)
    params = params_for(space, config_of(arch, train))
    assert params is not None
    study.enqueue_trial(params)
    again_arch, again_train = sample_config(study.ask(), space)
    assert (again_arch, again_train) == (arch, train)


def test_quantize_is_searched_and_older_configs_default_to_float():
    space = load_space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=4))
    sampled = {sample_config(study.ask(), space)[0].hparams["quantize"] for _ in range(20)}
    assert sampled == {"none", "int8"}
    arch, train = sample_config(study.ask(), space)
    stored = config_of(arch, train)
    del stored["model"]["quantize"]  # stored before quantize joined the space: built in float
    study.enqueue_trial(params_for(space, stored))
    again, _ = sample_config(study.ask(), space)
    assert again.hparams == {**arch.hparams, "quantize": "none"}


def test_default_params_take_the_dataclass_default_where_the_space_allows_it_else_the_middle():
    space = load_space()
    trial = optuna.trial.FixedTrial(default_params(space, "transformer"))
    arch, train = sample_config(trial, space)
    assert (arch.hparams["n_layers"], arch.hparams["moe_experts"], arch.hparams["n_heads"],
            train.lr) == (2, 0, 4, 1e-3)  # TransformerConfig's and TrainConfig's defaults
    inception = dict(sample_config(optuna.trial.FixedTrial(default_params(space, "inception")),
                                   space)[0].hparams)
    d_model = next(p for p in space.families["inception"] if p.name == "d_model")
    assert inception["d_model"] == d_model.choices[len(d_model.choices) // 2]  # no default
    narrow = space.under(Constraints(streaming=True))  # fixed parameters are left to the space
    for family in narrow.families:
        sample_config(optuna.trial.FixedTrial(default_params(narrow, family)), narrow)


def test_configs_outside_the_space_are_refused():
    space = load_space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    arch, train = sample_config(study.ask(), space)
    config = config_of(arch, train)
    assert params_for(space, {**config, "family": "mamba9"}) is None
    assert params_for(space, {**config, "train": {**config["train"], "lr": 5.0}}) is None
    assert params_for(space, {**config, "model": {**config["model"], "d_model": 17}}) is None


def test_streaming_pins_survive_sampling():
    space = load_space().under(Constraints(streaming=True))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    for _ in range(20):
        arch, _ = sample_config(study.ask(), space)
        assert arch.hparams.get("bidirectional", False) is False


def _task(task_id, **meta) -> TaskRecord:
    return task_record(id=task_id, dataset_name=f"d{task_id}", meta_features=meta)


def _trial(family) -> TrialRecord:
    return trial_record(family=family, config={"family": family}, params=1, flops=1)


def test_similar_winners_nearest_first_one_per_family():
    here = {"task": "regression", "seq_len": 100, "n_features": 2, "n_sequences": 1000}
    past = [(_task(1, **{**here, "seq_len": 400}), _trial("lstm")),
            (_task(2, **{**here, "seq_len": 110}), _trial("gru")),
            (_task(3, **{**here, "seq_len": 120}), _trial("gru")),
            (_task(4, **{**here, "task": "classification"}), _trial("tcn")),
            (_task(5, **{**here, "seq_len": 100000}), _trial("ssm"))]
    chosen = similar_winners(here, past)
    assert [(t.id, trial.family) for t, trial, _ in chosen] == [(2, "gru"), (1, "lstm")]
    # A task of another kind is comparable, but never near enough to warm-start from.
    assert task_distance(here, {**here, "task": "forecast"}) > MAX_DISTANCE
