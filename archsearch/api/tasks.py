"""The ``/tasks`` routes: submit a search, follow it, fetch its report and model, cancel and
resume it."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from archsearch.api.deps import (
    GUARDED,
    Config,
    Dashboard,
    Drivers,
    RequestUploads,
    StoreDep,
    TaskForm,
    TaskId,
)
from archsearch.api.form_stream import openapi_form
from archsearch.api.forms import (
    TASK_FORM,
    data_source,
    parse_constraints,
    parse_options,
    search_space,
)
from archsearch.api.problems import ERRORS, HttpProblem
from archsearch.api.schemas import LiveView, TaskCreated, TaskOptions, TaskView, TrialView
from archsearch.api.views import live_view, task_view, trial_view
from archsearch.data import LoadOptions
from archsearch.errors import ArchsearchError
from archsearch.store import TaskRecord
from archsearch.types import TaskStatus

FINAL = {TaskStatus.COMPLETED.value, TaskStatus.FAILED.value, TaskStatus.INTERRUPTED.value}

PAGE_SIZE, PAGE_MAX = 100, 1000  # rows per page of a listing: by default, at most
Limit = Annotated[int, Query(ge=1, le=PAGE_MAX, description="rows per page")]
Offset = Annotated[int, Query(ge=0, le=2**31 - 1, description="rows to skip")]
T = TypeVar("T")

router = APIRouter(prefix="/tasks", dependencies=GUARDED, responses=ERRORS)


class Viewer:
    """A stored task -> its view, with its trials and whether a driver here still runs it."""

    def __init__(self, store: StoreDep, drivers: Drivers, dashboard: Dashboard) -> None:
        self.store, self.drivers, self.dashboard = store, drivers, dashboard

    def __call__(self, task: TaskRecord) -> TaskView:
        return task_view(task, self.store.trials(task.id, with_epochs=False), self.dashboard,
                         self.drivers.running(task.id))


View = Annotated[Viewer, Depends()]


@router.post("", status_code=202, openapi_extra=openapi_form(TASK_FORM))
def submit_task(config: Config, drivers: Drivers, saved: RequestUploads,
                form: TaskForm) -> TaskCreated:
    """Validate the upload and the options, store the task as queued and start its search
    in the background. The fields: a dataset file or a builtin data set, options (TaskOptions
    as JSON) and, optionally, a space file."""
    from archsearch.options import SearchOptions
    from archsearch.workflow import SearchRequest, submit

    try:  # a refused task leaves nothing behind: its uploads are already on disk
        chosen = parse_options(TaskOptions, form.text["options"])
        constraints = parse_constraints(chosen.constraints)
        if {"task", "target"} & set(chosen.load):
            raise HttpProblem(422, "options.load: give task and target as options of their "
                                   "own, not inside load.")
        if "limits" in chosen.load:
            raise HttpProblem(422, "options.load: the data limits are this server's "
                                   "(archsearch serve --limit KEY=VALUE); a request cannot "
                                   "change them.")
        load = LoadOptions.from_dict({**chosen.load, "task": chosen.task,
                                      "target": chosen.target, "limits": config.limits})
        data = data_source(form.files.get("dataset"), form.text.get("builtin"))
        space_file = search_space(chosen.space, form.files.get("space"))
        task_id = submit(SearchRequest(
            data=data, constraints=constraints, load=load, space=space_file,
            options=SearchOptions.from_dict(chosen.model_dump()), db_url=config.db_url,
            ray_address=config.ray_address, report_dir=config.report_dir))
    except BaseException as exc:
        saved.discard()
        if isinstance(exc, ArchsearchError):
            raise HttpProblem(422, saved.in_client_names(str(exc))) from None
        raise
    drivers.launch(task_id)
    return TaskCreated(task_id=task_id, status=TaskStatus.QUEUED.value,
                       page=f"/ui/tasks/{task_id}")


@router.get("")
def list_tasks(request: Request, response: Response, store: StoreDep, view: View,
               limit: Limit = PAGE_SIZE, offset: Offset = 0,
               order: Annotated[Literal["asc", "desc"], Query(
                   description="by task id: oldest first (asc; a page never shifts when tasks "
                   "are added) or newest first (desc)")] = "asc") -> list[TaskView]:
    """A page of the tasks; a ``Link: <...>; rel="next"`` header points to the next page."""
    tasks = store.list_tasks(limit + 1, offset, newest_first=order == "desc")
    return [view(task) for task in _page(tasks, limit, offset, request, response)]


@router.get("/{task_id}")
def get_task(task_id: TaskId, store: StoreDep, view: View) -> TaskView:
    return view(store.get_task(task_id))


@router.get("/{task_id}/trials")
def get_trials(task_id: TaskId, request: Request, response: Response, store: StoreDep,
               limit: Limit = PAGE_SIZE, offset: Offset = 0) -> list[TrialView]:
    """A page of the task's trials by number; a ``Link: <...>; rel="next"`` header points to
    the next page."""
    store.get_task(task_id)  # 404 for a task that does not exist
    trials = store.trials(task_id, limit + 1, offset, with_epochs=False)
    return [trial_view(t) for t in _page(trials, limit, offset, request, response)]


@router.get("/{task_id}/live")
def get_live(task_id: TaskId, store: StoreDep, drivers: Drivers,
             dashboard: Dashboard) -> LiveView:
    """Everything the live page draws, in one poll."""
    return live_view(store.get_task(task_id), store.trials(task_id, with_epochs=False),
                     dashboard, drivers.running(task_id))


@router.get("/{task_id}/report", response_class=HTMLResponse)
def get_report(task_id: TaskId, store: StoreDep) -> HTMLResponse:
    """The task's HTML report (offline: inline charts, no CDN)."""
    task = store.get_task(task_id)
    if not task.report_path or not Path(task.report_path).is_file():
        raise HttpProblem(409, f"task {task_id} is {task.status}; its report is written "
                               "when its search ends.")
    return HTMLResponse(Path(task.report_path).read_text(encoding="utf-8"))


@router.get("/{task_id}/model", responses={
    200: {"content": {"application/zip": {}}, "description": "the model files"}})
def get_model(task_id: TaskId, store: StoreDep) -> Response:
    """The exported model as a zip: state_dict.pt, config.json, model.torchscript.pt (when
    it traces) and load_model.py."""
    from archsearch.workflow import model_folder

    task = store.get_task(task_id)
    model_dir = model_folder(task)
    # Only a task that ended: a running (resumed) one may be rewriting its model folder.
    if task.status not in FINAL or not model_dir.is_dir():
        raise HttpProblem(409, f"task {task_id} is {task.status} and has no exported model "
                               "(a model is exported when a search ends with a completed "
                               "trial).")
    return Response(_zip(model_dir), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="archsearch-task-{task_id}-model.zip"'})


@router.post("/{task_id}/cancel", status_code=202)
def cancel_task(task_id: TaskId, store: StoreDep, drivers: Drivers, view: View) -> TaskView:
    """Stop a queued or running task; it ends ``interrupted``, with a report of the trials
    done (its driver gets SIGINT, then is killed if it lingers)."""
    task = store.get_task(task_id)
    if task.status in FINAL:
        raise HttpProblem(409, f"task {task_id} already ended ({task.status}).")
    drivers.cancel(task_id)
    return view(store.get_task(task_id))


@router.post("/{task_id}/resume", status_code=202)
def resume_task(task_id: TaskId, store: StoreDep, drivers: Drivers, view: View) -> TaskView:
    """Continue a task whose driver stopped (killed, cancelled, its server gone): finished
    trials are kept and the budget is met exactly. Refused (409) for a completed task and
    while another live driver holds the task's lease."""
    from archsearch.workflow import LeaseHeld

    task = store.get_task(task_id)
    if task.status == TaskStatus.COMPLETED.value:
        raise HttpProblem(409, f"task {task_id} already completed; nothing to resume.")
    if drivers.running(task_id):
        raise HttpProblem(409, f"task {task_id} is still run by its driver on this "
                               "server; cancel it first.")
    try:
        drivers.launch(task_id)
    except LeaseHeld as exc:
        raise HttpProblem(409, str(exc)) from None
    return view(store.get_task(task_id))


def _page(rows: list[T], limit: int, offset: int, request: Request, response: Response
          ) -> list[T]:
    """The first ``limit`` rows (the store was asked for one more, to learn whether there is a
    next page without counting them all), and the Link header to the next page."""
    if len(rows) > limit:
        query = request.url.include_query_params(limit=limit, offset=offset + limit).query
        response.headers["Link"] = f'<{request.url.path}?{query}>; rel="next"'
    return rows[:limit]


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                archive.write(path, path.name)
    return buffer.getvalue()
