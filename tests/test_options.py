"""Search options are defined once (archsearch.options) and reach both faces: the CLI's
``archsearch search`` flags and the API's ``TaskOptions``."""

import argparse
import json
from dataclasses import fields

import pytest
from pydantic import ValidationError

from archsearch.api import ServeConfig
from archsearch.api.schemas import TaskOptions
from archsearch.cli import build_parser, serve_config
from archsearch.data import LoadOptions
from archsearch.errors import UsageError
from archsearch.options import SearchOptions
from archsearch.types import Objectives
from archsearch.workflow import SearchRequest

# Where a search runs, or how the command prints: settings of the CLI or of the server, never of
# a request. DATA is the API's dataset/builtin field; the data limits are the server's.
NOT_REQUEST_OPTIONS = {"help", "data", "resume", "lease_owner", "db", "ray_address",
                       "report_dir", "json", "limit"}
# How to read the data: one CLI flag each, the API's `load` object (task and target aside).
LOAD_FLAGS = {f.name for f in fields(LoadOptions)} - {"task", "target", "limits"}


def search_flags() -> dict[str, argparse.Action]:
    commands = next(a for a in build_parser()._actions
                    if isinstance(a, argparse._SubParsersAction))
    return {action.dest: action for action in commands.choices["search"]._actions}


def test_every_search_option_reaches_both_faces():
    cli = set(search_flags()) - NOT_REQUEST_OPTIONS
    as_the_api_names_them = (cli - LOAD_FLAGS - {"constraint"}) | {"load", "constraints"}
    assert as_the_api_names_them == set(TaskOptions.model_fields)
    assert LOAD_FLAGS <= cli


def test_both_faces_take_the_defaults_and_help_of_search_options():
    flags, schema = search_flags(), TaskOptions.model_json_schema()["properties"]
    for option in fields(SearchOptions):
        flag = flags[option.name]
        assert flag.default == option.default and flag.help == option.metadata["option"].help
        assert schema[option.name]["description"] == flag.help
    assert SearchOptions.from_dict(TaskOptions().model_dump()) == SearchOptions()


def test_the_api_sets_what_the_cli_sets():
    cli = build_parser().parse_args(
        ["search", "x.npz", "--objectives", "quality,latency", "--rung-seconds", "2",
         "--cpus-per-trial", "2", "--gpus-per-trial", "0.5", "--seed", "3"])
    api = TaskOptions.model_validate_json(json.dumps(
        {"objectives": "quality,latency", "rung_seconds": 2, "cpus_per_trial": 2,
         "gpus_per_trial": 0.5, "seed": 3}))
    expected = SearchOptions(objectives=Objectives(("latency",)), rung_seconds=2.0,
                             cpus_per_trial=2.0, gpus_per_trial=0.5, seed=3)
    assert SearchOptions.from_dict(api.model_dump()) == expected
    assert SearchOptions(**{f.name: getattr(cli, f.name) for f in fields(SearchOptions)}) \
        == expected


@pytest.mark.parametrize("bad", [{"objectives": "latency"}, {"cpus_per_trial": 0},
                                 {"rung_seconds": float("inf")}, {"seed": -1},
                                 {"sampler": "grid"}, {"budget_trials": 0}])
def test_both_faces_refuse_the_same_values(bad):
    with pytest.raises(ValidationError):
        TaskOptions.model_validate(bad)
    with pytest.raises(UsageError):
        name, value = next(iter(bad.items()))
        build_parser().parse_args(["search", "x.npz", f"--{name.replace('_', '-')}",
                                   str(value)])


def test_stored_options_are_the_serialised_form():
    request = SearchRequest("builtin:adding", options=SearchOptions(
        budget_minutes=3, objectives=Objectives.parse("quality,params"), rung_seconds=1.5))
    stored = json.loads(json.dumps(request.to_options()))
    assert stored["objectives"] == "quality,params" and stored["budget_trials"] is None
    assert SearchRequest.from_options(stored, "sqlite://", None).options == request.options
    # a task stored before an option existed takes its default
    older = {k: v for k, v in stored.items() if k not in ("objectives", "rung_seconds")}
    resumed = SearchRequest.from_options(older, "sqlite://", None).options
    assert resumed.objectives == Objectives() and resumed.rung_seconds is None
    with pytest.raises(UsageError, match="seed must be at least 0"):
        SearchOptions(seed=-1)
    with pytest.raises(UsageError, match="sampler must be one of tpe"):
        SearchOptions(sampler="grid")


def test_serve_flags_default_to_the_serve_config_defaults(monkeypatch):
    monkeypatch.delenv("ARCHSEARCH_DB", raising=False)
    assert serve_config(build_parser().parse_args(["serve"])) == ServeConfig()
