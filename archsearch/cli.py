"""The ``archsearch`` command line: parse, call down, print. Exit codes: 0 success, 1 internal
failure, 2 invalid input (one paragraph, no traceback), 130 interrupted."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import NoReturn

from archsearch.errors import ArchsearchError, UsageError
from archsearch.types import Constraints, TaskKind

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help').")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def _default_db() -> str:
    return os.environ.get("ARCHSEARCH_DB") or "sqlite:///archsearch.db"


def build_parser() -> argparse.ArgumentParser:
    from archsearch.search import PRUNERS, SAMPLERS

    parser = _Parser(prog="archsearch", description="Measure sequence-model families on your "
                     "data and hardware, and recommend one.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    search = commands.add_parser("search", help="run an architecture search on a data set")
    search.add_argument("data", nargs="?",
                        help="a data file (.npz) or builtin:NAME[?key=value&...]")
    search.add_argument("--resume", type=_positive_int, metavar="TASK_ID",
                        help="continue a stopped task (kept trials are not rerun)")
    search.add_argument("--task", choices=[k.value for k in TaskKind])
    search.add_argument("--target", help="target column (tabular formats)")
    search.add_argument("--constraint", action="append", default=[], metavar="KEY=VALUE",
                        help="max_latency_ms, max_params, max_memory_mb, max_trial_minutes, "
                        "streaming, device (repeatable)")
    search.add_argument("--budget-trials", type=_positive_int, default=12, metavar="N")
    search.add_argument("--budget-minutes", type=_positive_float, metavar="M")
    search.add_argument("--space", metavar="FILE", help="search-space YAML "
                        "(default: search_spaces/default.yaml)")
    search.add_argument("--sampler", choices=SAMPLERS, default="tpe")
    search.add_argument("--pruner", choices=PRUNERS, default="median")
    _add_db(search)
    search.add_argument("--ray-address", metavar="ADDR",
                        help="join this Ray cluster (default: start a local one)")
    search.add_argument("--report-dir", type=Path, default=Path("reports"), metavar="DIR")
    search.add_argument("--seed", type=int, default=0)
    search.add_argument("--json", action="store_true",
                        help="print a JSON summary as the last line of stdout")

    tasks = commands.add_parser("tasks", help="list the tasks in the database")
    _add_db(tasks)
    tasks.add_argument("--json", action="store_true")

    report = commands.add_parser("report", help="render a task's report again")
    report.add_argument("task_id", type=_positive_int, metavar="TASK_ID")
    _add_db(report)
    return parser


def _add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=_default_db(), metavar="URL",
                        help="SQLAlchemy URL (default: $ARCHSEARCH_DB or sqlite:///archsearch.db)")


def _search(args: argparse.Namespace) -> int:
    from archsearch.workflow import SearchRequest, resume, run_task

    if (args.data is None) == (args.resume is None):
        raise UsageError("give either DATA (a new search) or --resume TASK_ID (continue one), "
                         "not both and not neither.")
    if args.resume is not None:
        return _print_result(resume(args.resume, args.db, args.ray_address), args.json)
    request = SearchRequest(
        data=args.data, constraints=Constraints.parse(args.constraint),
        task=TaskKind(args.task) if args.task else None, target=args.target,
        budget_trials=args.budget_trials, budget_minutes=args.budget_minutes, space=args.space,
        db_url=args.db, ray_address=args.ray_address, report_dir=args.report_dir,
        seed=args.seed, sampler=args.sampler, pruner=args.pruner,
    )
    return _print_result(run_task(request), args.json)


def _print_result(result: dict, as_json: bool) -> int:
    best, rec = result["best"], result["recommendation"]
    if rec is not None:
        print(f"Recommendation: {rec['family']} (confidence {rec['confidence']:.2f})")
        for sentence in rec["rationale"]:
            print(f"  - {sentence}")
    if best is not None:
        print(f"Best trial {best['trial_id']} ({best['family']}): validation "
              f"{result['metric']['name']} {best['val_score']:.4g}, test {best['test_score']:.4g}")
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


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        handler = {"search": _search, "tasks": _tasks, "report": _report}[args.command]
        return handler(args)
    except ArchsearchError as exc:
        print(f"archsearch: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
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
