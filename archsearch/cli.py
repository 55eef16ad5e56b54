"""The ``archsearch`` command line: parse, call down, print. Exit codes: 0 success, 1 internal
failure (with a traceback) or a task stopped by a failed write (one paragraph), 2 invalid input
(one paragraph, no traceback), 130 interrupted."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, get_args, get_type_hints

from archsearch.errors import ArchsearchError, UsageError
from archsearch.options import (
    DEFAULT_DATA_DIR,
    DEFAULT_DB_URL,
    DEFAULT_MAX_UPLOAD_MB,
    DEFAULT_REPORT_DIR,
    DEFAULT_SERVE_HOST,
    DEFAULT_SERVE_PORT,
    Option,
    SearchOptions,
    option_of,
)
from archsearch.types import Constraints, TaskKind

if TYPE_CHECKING:
    from archsearch.api import ServeConfig
    from archsearch.data import LoadOptions

EXIT_OK, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 130  # input errors: ArchsearchError.exit_code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help').")


def _number(kind: type, bounds: Option) -> Callable[[str], Any]:
    """An argparse type: a finite ``kind`` within ``bounds``."""
    noun = "an integer" if kind is int else "a number"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not {noun}") from None
        problem = bounds.problem(value)
        if problem:
            raise argparse.ArgumentTypeError(f"{problem}, not {text}")
        return value

    return parse


_positive_int = _number(int, Option("", minimum=1))
_positive_float = _number(float, Option("", minimum=0.0, strict=True))


def _default_db() -> str:
    return os.environ.get("ARCHSEARCH_DB") or DEFAULT_DB_URL


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="archsearch", description="Measure sequence-model families on your "
                     "data and hardware, and recommend one.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    _add_search_command(commands)

    tasks = commands.add_parser("tasks", help="list the tasks in the database")
    _add_db(tasks)
    tasks.add_argument("--json", action="store_true")

    spaces = commands.add_parser("spaces", help="search-space files")
    space_commands = spaces.add_subparsers(dest="spaces_command", required=True,
                                           parser_class=_Parser)
    validate = space_commands.add_parser("validate", help="check a search-space YAML file")
    validate.add_argument("file", type=Path, metavar="FILE")

    report = commands.add_parser("report", help="render a task's report again")
    report.add_argument("task_id", type=_positive_int, metavar="TASK_ID")
    _add_db(report)

    advice = commands.add_parser("recommend", help="recommend a family in seconds, before any "
                                 "search: rules and past tasks (no training)")
    advice.add_argument("data", help="a data file or builtin:NAME[?key=value&...]")
    _add_load_options(advice)
    advice.add_argument("--constraint", action="append", default=[], metavar="KEY=VALUE",
                        help="as for search (repeatable)")
    advice.add_argument("--space", metavar="FILE", help="the families to choose from "
                        "(default: search_spaces/default.yaml)")
    _add_db(advice)
    advice.add_argument("--json", action="store_true",
                        help="print the recommendation as JSON on the last line of stdout")

    datasets = commands.add_parser("datasets", help="list the built-in data sets")
    datasets.add_argument("--json", action="store_true",
                          help="print them as a JSON list on the last line of stdout")

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    upgrade = db_commands.add_parser("upgrade", help="apply the schema migrations shipped in "
                                     "the package (Alembic) and print the revision")
    _add_db(upgrade)
    upgrade.add_argument("--json", action="store_true")

    _add_serve_command(commands)
    return parser


def _add_search_command(commands: argparse._SubParsersAction) -> None:
    search = commands.add_parser("search", help="run an architecture search on a data set")
    search.add_argument("data", nargs="?",
                        help="a data file (.npz, .csv, .parquet) or builtin:NAME[?key=value&...] "
                        "(`archsearch datasets` lists them)")
    search.add_argument("--resume", type=_positive_int, metavar="TASK_ID",
                        help="continue a stopped task (kept trials are not rerun); refused while "
                        "another live driver holds the task's lease")
    # The lease owner id a server's driver runs as (the server took the lease for it).
    search.add_argument("--lease-owner", help=argparse.SUPPRESS)
    _add_load_options(search)
    search.add_argument("--constraint", action="append", default=[], metavar="KEY=VALUE",
                        help="max_latency_ms, max_params, max_memory_mb, max_trial_minutes, "
                        "streaming, device (repeatable)")
    search.add_argument("--space", metavar="FILE", help="search-space YAML "
                        "(default: search_spaces/default.yaml)")
    _add_search_options(search)
    _add_db(search)
    search.add_argument("--ray-address", metavar="ADDR",
                        help="join this Ray cluster (default: start a local one)")
    search.add_argument("--report-dir", type=Path, default=DEFAULT_REPORT_DIR, metavar="DIR")
    search.add_argument("--json", action="store_true",
                        help="print a JSON summary as the last line of stdout")


def _add_serve_command(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="run the HTTP API and the live pages; searches "
                                "run in background driver processes")
    serve.add_argument("--host", default=DEFAULT_SERVE_HOST,
                       help=f"address to listen on (default {DEFAULT_SERVE_HOST}; any other "
                       "needs a token)")
    serve.add_argument("--port", type=_positive_int, default=DEFAULT_SERVE_PORT)
    _add_db(serve)
    serve.add_argument("--ray-address", metavar="ADDR", help="the Ray cluster the searches "
                       "join (default: each search starts a local Ray)")
    serve.add_argument("--dashboard-url", metavar="URL", help="the Ray dashboard the pages "
                       "link to (default: port 8265 of the Ray head, or of 127.0.0.1)")
    serve.add_argument("--token-file", type=Path, metavar="FILE", help="file holding the bearer "
                       "token (default: $ARCHSEARCH_API_TOKEN; on loopback without either, a "
                       "token is generated into DATA_DIR/api_token)")
    serve.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, metavar="DIR",
                       help=f"uploads and driver logs (default {DEFAULT_DATA_DIR}/)")
    serve.add_argument("--report-dir", type=Path, default=DEFAULT_REPORT_DIR, metavar="DIR")
    serve.add_argument("--max-upload-mb", type=_positive_float, default=DEFAULT_MAX_UPLOAD_MB,
                       metavar="MB", help=f"largest request body accepted (default "
                       f"{DEFAULT_MAX_UPLOAD_MB:g})")
    _add_limit(serve)


def _add_search_options(parser: argparse.ArgumentParser) -> None:
    """One flag per field of SearchOptions (``--budget-trials`` for ``budget_trials``), with the
    help, bounds and default defined there."""
    kinds = get_type_hints(SearchOptions)
    for option in fields(SearchOptions):
        shown = option_of(option)
        kind = int if int in (kinds[option.name], *get_args(kinds[option.name])) else float
        parse = shown.parse or (str if shown.choices else _number(kind, shown))
        parser.add_argument("--" + option.name.replace("_", "-"), type=parse,
                            choices=shown.choices, default=option.default,
                            metavar=shown.metavar, help=shown.help)


def _search_options(args: argparse.Namespace) -> SearchOptions:
    """The SearchOptions of parsed ``archsearch search`` flags."""
    return SearchOptions(**{option.name: getattr(args, option.name)
                            for option in fields(SearchOptions)})


def _add_load_options(parser: argparse.ArgumentParser) -> None:
    """How to read DATA: the fields of LoadOptions (left out: detected, or its default)."""
    from archsearch.data import IMPUTE_METHODS, LoadOptions

    group = parser.add_argument_group("reading DATA (left out: detected from the data)")
    group.add_argument("--task", choices=[k.value for k in TaskKind])
    group.add_argument("--target", metavar="COLUMN", help="CSV/Parquet: the target column "
                       "(long format: each sequence's label; series: the one column to forecast, "
                       "default every value column)")
    group.add_argument("--id-column", metavar="COLUMN", help="long format: the sequence id "
                       f"column (default {LoadOptions.id_column})")
    group.add_argument("--step-column", metavar="COLUMN", help="long format: the step column "
                       f"(default {LoadOptions.step_column})")
    group.add_argument("--time-column", metavar="COLUMN", help="series: the time column "
                       "(default: one named time, date, timestamp, datetime, ds or t)")
    group.add_argument("--lookback", type=_positive_int, metavar="STEPS",
                       help="series: input steps of each forecast window (default 32)")
    group.add_argument("--horizon", type=_positive_int, metavar="STEPS",
                       help=f"series: steps to forecast (default {LoadOptions.horizon})")
    group.add_argument("--impute", choices=IMPUTE_METHODS, help="fill NaN feature values "
                       "(series: every value column) instead of refusing them")
    _add_limit(group)


def _add_limit(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--limit KEY=VALUE``: the data limits (DataLimits), each defined once there."""
    from archsearch.data import DataLimits

    parser.add_argument("--limit", action="append", default=[], metavar="KEY=VALUE",
                        help="change a data limit, checked before the data is read into memory "
                        f"(repeatable): {DataLimits.describe()}; see docs/data-limits.md")


def _load_options(args: argparse.Namespace) -> LoadOptions:
    """The LoadOptions of the flags given; LoadOptions keeps the defaults of the others."""
    from archsearch.data import DataLimits, LoadOptions

    given = {f.name: getattr(args, f.name) for f in fields(LoadOptions) if f.name != "limits"}
    return LoadOptions(**{name: value for name, value in given.items() if value is not None},
                       limits=DataLimits.from_items(args.limit))


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=_default_db(), metavar="URL",
                        help=f"SQLAlchemy URL (default: $ARCHSEARCH_DB or {DEFAULT_DB_URL})")


def _data_first(command: Callable[[argparse.Namespace], int]
                ) -> Callable[[argparse.Namespace], int]:
    """Load DATA before ``command`` imports the search machinery (torch, Ray: seconds), so that
    data the limits or the data contract refuse is refused at once; ``command`` then reuses
    the data set loaded here (see :func:`archsearch.data.reuse_loads`)."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        from archsearch.data import load_dataset, reuse_loads

        with reuse_loads():
            if args.data is not None and getattr(args, "resume", None) is None:
                load_dataset(args.data, _load_options(args))
            return command(args)

    return run


@_data_first
def _search(args: argparse.Namespace) -> int:
    from archsearch.workflow import SearchRequest, resume, run_task

    if (args.data is None) == (args.resume is None):
        raise UsageError("give either DATA (a new search) or --resume TASK_ID (continue one), "
                         "not both and not neither.")
    if args.resume is not None:
        return _print_result(resume(args.resume, args.db, args.ray_address,
                                    owner=args.lease_owner), args.json)
    request = SearchRequest(
        data=args.data, constraints=Constraints.parse(args.constraint), load=_load_options(args),
        space=args.space, options=_search_options(args), db_url=args.db,
        ray_address=args.ray_address, report_dir=args.report_dir)
    return _print_result(run_task(request, started=args.started), args.json)


def _print_result(result: dict, as_json: bool) -> int:
    best, rec = result["best"], result["recommendation"]
    if rec is not None:
        print(f"Recommendation: {rec['family']} (confidence {rec['confidence']:.2f})")
        for sentence in rec["rationale"]:
            print(f"  - {sentence}")
    if best is not None:
        print(f"Best trial {best['trial_id']} ({best['family']}): validation "
              f"{result['metric']['name']} {best['val_score']:.4g}, test {best['test_score']:.4g}"
              + ("" if best["bag"] is None else f"; as a bag of its {best['bag']['members']} "
                 f"fold models (the answer), test {best['bag']['test_score']:.4g}"))
    floor = result.get("floor")
    if floor is not None:  # the measured floor (docs/floor.md), and which model is the answer
        val = "n/a" if floor["val"] is None else f"{floor['val']:.4g}"
        test = "n/a" if floor["test"] is None else f"{floor['test']:.4g}"
        bagged = ("" if floor["bag_test"] is None
                  else f" (its fold models as a bag: {floor['bag_test']:.4g})")
        print(f"Floor ({floor['method']}): validation {result['metric']['name']} {val}, "
              f"test {test}{bagged}. Answer: " + ("the floor model, model/floor_model.joblib"
                                          if result["answer"] == "floor"
                                          else "the best searched model"))
    counts = result["trials"]
    print(f"Trials: {', '.join(f'{n} {status}' for status, n in counts.items())}")
    print(f"Report: {result['report']}")
    if as_json:
        print(json.dumps(result, default=str))
    return {"completed": EXIT_OK, "interrupted": EXIT_INTERRUPTED}.get(result["status"],
                                                                       EXIT_INTERNAL)


def _tasks(args: argparse.Namespace) -> int:
    from archsearch.workflow import list_tasks

    tasks = list_tasks(args.db)
    rows = [{"task_id": t.id, "status": t.status, "created_at": t.created_at.isoformat(),
             "dataset": t.dataset_name, "task": t.task_kind, "report": t.report_path}
            for t in tasks]
    for row in rows:
        print(f"{row['task_id']:>5}  {row['status']:<11} {row['created_at'][:19]}  "
              f"{row['task']:<14} {row['dataset']}")
    if not rows:
        print("No tasks in the database yet.")
    if args.json:
        print(json.dumps(rows))
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    from archsearch.workflow import rerender_report

    print(rerender_report(args.db, args.task_id))
    return EXIT_OK


@_data_first
def _recommend(args: argparse.Namespace) -> int:
    from archsearch.recommend import advise

    advice = advise(args.data, Constraints.parse(args.constraint), args.db,
                    load=_load_options(args), space=args.space)
    rec, answer = advice.recommendation, advice.to_json()
    basis = (f"measured in task {advice.measured_task.id}" if advice.measured_task
             else f"rules and {advice.past.n_tasks} past task(s), before any search")
    print(f"Recommendation for {advice.dataset_name}: {rec.family} "
          f"(confidence {rec.confidence:.2f}; {basis})")
    for sentence in rec.rationale:
        print(f"  - {sentence}")
    # An instant pick led by the zero-shot portfolio: its families come first, whatever the
    # prior's score, so theirs is not shown (a pick "scored 0.000" reads as a broken one).
    led = set(advice.portfolio.families) if advice.stated and advice.portfolio.used else set()
    heading = "Ranking (the portfolio, then by score)" if led else "Ranking (by score)"
    print(f"{heading}: " + ", ".join(
        f"{r.family} " + ("(portfolio)" if r.family in led else f"{r.score:.3f}")
        + (f" (excluded: {r.excluded_by})" if r.excluded_by else "") for r in rec.ranking))
    if answer["config"]:
        print(f"Configuration ({answer['config_source']}): {json.dumps(answer['config'])}")
    else:
        print(f"Configuration: none measured yet; `archsearch search {args.data}` measures it.")
    print(f"Database: {advice.database}.")
    if args.json:
        print(json.dumps(answer, default=str))
    return EXIT_OK


def _datasets(args: argparse.Namespace) -> int:
    from archsearch.data import BUILTIN_TASKS, INSTALL_HINT

    rows = [{"name": t.name, "source": f"builtin:{t.name}", "description": t.description,
             "parameters": dict(t.defaults), "requires": t.requires, "available": t.available}
            for t in BUILTIN_TASKS.values()]
    width = max(len(row["name"]) for row in rows)
    for row in rows:
        parameters = ", ".join(f"{k}={v}" for k, v in row["parameters"].items())
        needs = "" if row["requires"] is None else (
            f" [{row['requires']}: installed]" if row["available"]
            else f" [needs {row['requires']}: {INSTALL_HINT}]")
        print(f"{row['name']:<{width}}  {row['description']}"
              f"{f' ({parameters})' if parameters else ''}{needs}")
    if args.json:
        print(json.dumps(rows))
    return EXIT_OK


def _db(args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from archsearch.store import Store, head_revision, schema_revision_of

    before = schema_revision_of(args.db)  # a bad URL or an unreachable server: exit 2
    shown = make_url(args.db).render_as_string(hide_password=True)
    with Store(args.db) as store:  # opening it to write applies the migrations
        after = store.schema_revision()
    head = head_revision()
    change = (f"already at {after}" if before == after
              else f"upgraded from {before or 'an empty database'} to {after}")
    print(f"Database {shown}: {change} (newest shipped revision: {head}).")
    if args.json:
        print(json.dumps({"database": shown, "from": before, "revision": after, "head": head}))
    return EXIT_OK


def _serve(args: argparse.Namespace) -> int:
    from archsearch.api import serve

    serve(serve_config(args))
    return EXIT_OK


def serve_config(args: argparse.Namespace) -> ServeConfig:
    """The settings of ``archsearch serve`` from its parsed flags."""
    from archsearch.api import ServeConfig
    from archsearch.data import DataLimits

    return ServeConfig(host=args.host, port=args.port, db_url=args.db,
                       ray_address=args.ray_address, dashboard_url=args.dashboard_url,
                       data_dir=args.data_dir, report_dir=args.report_dir,
                       token_file=args.token_file, max_upload_mb=args.max_upload_mb,
                       limits=DataLimits.from_items(args.limit))


def _spaces(args: argparse.Namespace) -> int:
    from archsearch.space import load_space

    space = load_space(args.file)
    searched = sum(p.type != "fixed" for ps in space.families.values() for p in ps)
    print(f"{args.file}: valid. {len(space.families)} families "
          f"({', '.join(sorted(space.families))}); {len(space.training)} training and "
          f"{len(space.shared)} shared parameters; {searched} family parameters searched; "
          f"{len(space.rules)} rule(s).")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    started = time.time()  # a --budget-minutes runs from here
    try:
        args = build_parser().parse_args(argv)
        args.started = started
        handler = {"search": _search, "tasks": _tasks, "report": _report, "spaces": _spaces,
                   "recommend": _recommend, "datasets": _datasets, "db": _db,
                   "serve": _serve}[args.command]
        return handler(args)
    except ArchsearchError as exc:
        print(f"archsearch: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("archsearch: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # noqa: BLE001  (an internal failure: keep the traceback for the bug report)
        print("archsearch: internal error (please report it with the traceback below):",
              file=sys.stderr)
        traceback.print_exc()
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
