"""The HTTP API (FastAPI): routes call down into the workflow and the store, nothing more."""

import io
import secrets
import shutil
import uuid
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, Security, UploadFile
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from archsearch import __version__
from archsearch.api import pages
from archsearch.api.config import ServeConfig
from archsearch.api.drivers import DriverPool
from archsearch.api.schemas import (
    LiveView,
    Problem,
    RecommendOptions,
    TaskCreated,
    TaskOptions,
    TaskView,
    TrialView,
)
from archsearch.api.views import live_view, task_view, trial_view
from archsearch.data import SUPPORTED_EXTENSIONS, LoadOptions
from archsearch.errors import ArchsearchError, NotFoundError
from archsearch.space import default_space_path
from archsearch.store import Store, TaskRecord
from archsearch.types import Constraints, TaskStatus

TaskId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]  # beyond: not a row id in any backend
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (401, 404, 409, 411, 413, 422)}
FINAL = {TaskStatus.COMPLETED.value, TaskStatus.FAILED.value, TaskStatus.INTERRUPTED.value}
PAGES = "/ui/"  # the live pages' shells: public, they hold no task data


class HttpProblem(Exception):
    """A 4xx answer with a one-paragraph detail."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class BodyLimit:
    """Refuse a request body over the limit before reading it. A body must declare its length
    (every browser and HTTP client does for uploads; no header means no body), and the server
    reads no more than that, so the declared length is the bound."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            headers = dict(scope["headers"])
            declared = headers.get(b"content-length", b"0").decode("latin-1")
            problem = None
            if b"transfer-encoding" in headers or not declared.isdigit():
                problem = (411, "a request body must declare its Content-Length (no chunked "
                                "uploads).")
            elif int(declared) > self.max_bytes:
                problem = (413, f"the request body is {int(declared)} bytes; this server "
                                f"accepts at most {self.max_bytes} (serve --max-upload-mb).")
            if problem:
                await JSONResponse({"detail": problem[1]}, problem[0])(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BearerAuth:
    """Check the bearer token on the request's headers before anything reads its body: a request
    without the right token is answered 401 without a single call to ``receive``, so an upload
    from a stranger is never spooled to disk. Every path but the public ones is guarded, so a
    route added later is guarded too."""

    def __init__(self, app: ASGIApp, token: str, public: frozenset[str]) -> None:
        self.app, self.token, self.public = app, token.encode(), public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._public(scope["path"]):
            scheme, _, given = dict(scope["headers"]).get(b"authorization", b"").partition(b" ")
            if scheme.lower() != b"bearer" or not secrets.compare_digest(given.strip(),
                                                                         self.token):
                await JSONResponse(
                    {"detail": "missing or wrong bearer token: send `Authorization: Bearer "
                               "TOKEN` with the token `archsearch serve` printed."},
                    401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _public(self, path: str) -> bool:
        return path in self.public or path.startswith(PAGES)


class Uploads:
    """The files of one request, stored under names the server chooses (the client's file name
    is never used as a path); error messages name them as the client did."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()  # stored with the task: the driver must find it anywhere
        self.client_names: dict[Path, str] = {}

    def save(self, upload: UploadFile, suffix: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{uuid.uuid4().hex}{suffix}"
        with open(path, "xb") as out:
            shutil.copyfileobj(upload.file, out, 1 << 20)
        self.client_names[path] = Path(upload.filename or "upload").name[:200]
        return path

    def in_client_names(self, message: str) -> str:
        for path, name in self.client_names.items():
            message = message.replace(str(path), name).replace(path.name, name)
        return message

    def discard(self) -> None:
        for path in self.client_names:
            path.unlink(missing_ok=True)


def create_app(config: ServeConfig, token: str) -> FastAPI:
    drivers = DriverPool(config)
    store = Store(config.db_url)  # one engine for every request; migrations run once, here
    dashboard = config.ray_dashboard()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        drivers.shutdown()
        store.close()

    app = FastAPI(title="archsearch", version=__version__, lifespan=lifespan,
                  description="Submit a data set and constraints; archsearch searches sequence "
                  "architectures on Ray and recommends one. Every /tasks and /recommend route "
                  "takes `Authorization: Bearer TOKEN`.")
    app.add_middleware(BodyLimit, max_bytes=config.max_upload_bytes)
    # Added last, so it runs first: no token, no look at the body (not even its length).
    app.add_middleware(BearerAuth, token=token, public=frozenset(
        {"/", "/health", app.openapi_url, app.docs_url, app.redoc_url,
         app.swagger_ui_oauth2_redirect_url}))
    # BearerAuth checks the token; this only declares the scheme in the OpenAPI spec (for
    # /docs and API clients).
    bearer = HTTPBearer(auto_error=False, description="the token of `archsearch serve`")

    @app.exception_handler(HttpProblem)
    async def _problem(_: Request, exc: HttpProblem) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, exc.status)

    @app.exception_handler(NotFoundError)
    async def _not_found(_: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 404)

    @app.exception_handler(ArchsearchError)
    async def _bad_input(_: Request, exc: ArchsearchError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 422)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _paragraph(exc.errors())}, 422)

    @app.middleware("http")
    async def _hardened(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if (response.headers.get("content-type", "").startswith("text/html")
                and request.url.path not in (app.docs_url, app.redoc_url)):
            # The pages and the report are self-contained: their own inline script and style,
            # data from this origin only, and never framed by another site. (FastAPI's /docs
            # loads Swagger UI from a CDN, so it is left out.)
            response.headers["Content-Security-Policy"] = (
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                "connect-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'; "
                "base-uri 'none'; form-action 'self'")
        return response

    guarded = [Security(bearer)]

    def view(task: TaskRecord) -> TaskView:
        return task_view(task, store.trials(task.id), dashboard, drivers.running(task.id))

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def front_page() -> str:
        return pages.front_page()

    @app.get(PAGES + "tasks/{task_id}", response_class=HTMLResponse, include_in_schema=False)
    def live_page(task_id: TaskId) -> str:
        return pages.live_page(task_id, dashboard)

    @app.post("/tasks", status_code=202, dependencies=guarded, responses=ERRORS)
    def submit_task(dataset: Annotated[UploadFile | None, File(
                        description="the data set: .npz, .csv, .tsv (optionally .gz), "
                        ".parquet")] = None,
                    builtin: Annotated[str | None, Form(
                        description="instead of a file: a built-in data set, "
                        "builtin:NAME[?key=value&...]", max_length=500)] = None,
                    options: Annotated[str, Form(description="TaskOptions as JSON")] = "{}",
                    space: Annotated[UploadFile | None, File(description="a search-space "
                                                             "YAML (instead of options.space)")]
                    = None) -> TaskCreated:
        """Validate the upload and the options, store the task as queued and start its search
        in the background."""
        from archsearch.options import SearchOptions
        from archsearch.workflow import SearchRequest, submit

        chosen = _parse(TaskOptions, options)
        constraints = _constraints(chosen.constraints)
        if {"task", "target"} & set(chosen.load):
            raise HttpProblem(422, "options.load: give task and target as options of their "
                                   "own, not inside load.")
        if "limits" in chosen.load:
            raise HttpProblem(422, "options.load: the data limits are this server's (archsearch "
                                   "serve --limit KEY=VALUE); a request cannot change them.")
        load = LoadOptions.from_dict({**chosen.load, "task": chosen.task,
                                      "target": chosen.target, "limits": config.limits})
        saved = Uploads(config.data_dir / "uploads")
        try:
            data = _data_source(dataset, builtin, saved)
            space_file = _space(chosen.space, space, saved)
            task_id = submit(SearchRequest(
                data=data, constraints=constraints, load=load, space=space_file,
                options=SearchOptions.from_dict(chosen.model_dump()), db_url=config.db_url,
                ray_address=config.ray_address, report_dir=config.report_dir))
        except BaseException as exc:
            saved.discard()  # a refused task leaves nothing behind
            if isinstance(exc, ArchsearchError):
                raise HttpProblem(422, saved.in_client_names(str(exc))) from None
            raise
        drivers.launch(task_id)
        return TaskCreated(task_id=task_id, status=TaskStatus.QUEUED.value,
                           page=f"/ui/tasks/{task_id}")

    @app.get("/tasks", dependencies=guarded, responses=ERRORS)
    def list_tasks() -> list[TaskView]:
        return [view(task) for task in store.list_tasks()]

    @app.get("/tasks/{task_id}", dependencies=guarded, responses=ERRORS)
    def get_task(task_id: TaskId) -> TaskView:
        return view(store.get_task(task_id))

    @app.get("/tasks/{task_id}/trials", dependencies=guarded, responses=ERRORS)
    def get_trials(task_id: TaskId) -> list[TrialView]:
        store.get_task(task_id)  # 404 for a task that does not exist
        return [trial_view(t) for t in store.trials(task_id)]

    @app.get("/tasks/{task_id}/live", dependencies=guarded, responses=ERRORS)
    def get_live(task_id: TaskId) -> LiveView:
        """Everything the live page draws, in one poll."""
        return live_view(store.get_task(task_id), store.trials(task_id), dashboard,
                         drivers.running(task_id))

    @app.get("/tasks/{task_id}/report", dependencies=guarded, response_class=HTMLResponse,
             responses=ERRORS)
    def get_report(task_id: TaskId) -> HTMLResponse:
        """The task's HTML report (offline: inline charts, no CDN)."""
        task = store.get_task(task_id)
        if not task.report_path or not Path(task.report_path).is_file():
            raise HttpProblem(409, f"task {task_id} is {task.status}; its report is written "
                                   "when its search ends.")
        return HTMLResponse(Path(task.report_path).read_text(encoding="utf-8"))

    @app.get("/tasks/{task_id}/model", dependencies=guarded, responses={
        **ERRORS, 200: {"content": {"application/zip": {}}, "description": "the model files"}})
    def get_model(task_id: TaskId) -> Response:
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

    @app.post("/tasks/{task_id}/cancel", status_code=202, dependencies=guarded,
              responses=ERRORS)
    def cancel_task(task_id: TaskId) -> TaskView:
        """Stop a queued or running task; it ends ``interrupted``, with a report of the trials
        done (its driver gets SIGINT, then is killed if it lingers)."""
        task = store.get_task(task_id)
        if task.status in FINAL:
            raise HttpProblem(409, f"task {task_id} already ended ({task.status}).")
        drivers.cancel(task_id)
        return view(store.get_task(task_id))

    @app.post("/tasks/{task_id}/resume", status_code=202, dependencies=guarded,
              responses=ERRORS)
    def resume_task(task_id: TaskId) -> TaskView:
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

    @app.post("/recommend", dependencies=guarded, responses=ERRORS)
    def recommend_now(dataset: Annotated[UploadFile | None, File(
                          description="the data set (as for POST /tasks)")] = None,
                      builtin: Annotated[str | None, Form(
                          description="instead of a file: builtin:NAME[?key=value&...]",
                          max_length=500)] = None,
                      options: Annotated[str, Form(description="RecommendOptions as "
                                                   "JSON")] = "{}") -> dict[str, Any]:
        """An instant answer from the rules, the data set's meta-features and the past tasks
        in the database: no training."""
        from archsearch.recommend import advise

        chosen = _parse(RecommendOptions, options)
        constraints = _constraints(chosen.constraints)
        saved = Uploads(config.data_dir / "uploads")
        try:
            space_file = _space(chosen.space, None, saved)
            data = _data_source(dataset, builtin, saved)
            return advise(data, constraints, config.db_url,
                          load=LoadOptions(task=chosen.task, limits=config.limits),
                          space=space_file).to_json()
        except ArchsearchError as exc:
            raise HttpProblem(422, saved.in_client_names(str(exc))) from None
        finally:
            saved.discard()  # an instant answer keeps nothing

    return app


def _paragraph(errors: Any) -> str:
    """Pydantic's error list as one sentence per problem."""
    parts = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "__root__"))
        parts.append(f"{where or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) + "."


def _parse(model: type[BaseModel], text: str) -> Any:
    try:
        return model.model_validate_json(text or "{}")
    except ValidationError as exc:
        raise HttpProblem(422, "options: " + _paragraph(exc.errors())) from None


def _constraints(values: dict[str, Any]) -> Constraints:
    text = {key: str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in values.items()}
    return Constraints.parse([f"{key}={value}" for key, value in text.items()])


def _data_suffix(filename: str | None) -> str:
    """The upload's format, from the end of its name alone: the name is never used as a path."""
    name = (filename or "").lower()
    for suffix in sorted(SUPPORTED_EXTENSIONS, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    raise HttpProblem(422, f"dataset: the file name must end in one of "
                           f"{', '.join(SUPPORTED_EXTENSIONS)} (it says which format it is).")


def _data_source(upload: UploadFile | None, builtin: str | None, saved: Uploads) -> str:
    """What the data layer loads: a built-in data set, or the upload saved under a server-chosen
    name."""
    if (upload is None) == (builtin is None):
        raise HttpProblem(422, "give either a dataset file or a builtin data set "
                               "(builtin:NAME[?key=value&...]), not both and not neither.")
    if builtin is not None:
        if not builtin.startswith("builtin:"):
            raise HttpProblem(422, f"builtin: '{builtin[:80]}' does not start with 'builtin:'; "
                                   "upload files as the dataset field.")
        return builtin
    return str(saved.save(upload, _data_suffix(upload.filename)))


def _space(name: str | None, upload: UploadFile | None, saved: Uploads) -> str | None:
    """The search-space file: an uploaded YAML, a space shipped with the server, or None (the
    default)."""
    if upload is not None and name is not None:
        raise HttpProblem(422, "give either options.space (a shipped space) or a space file, "
                               "not both.")
    if upload is not None:
        return str(saved.save(upload, ".yaml"))
    if name is None:
        return None
    shipped = default_space_path().parent
    path = shipped / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in shipped.glob("*.yaml")))
        raise HttpProblem(422, f"options.space: no search space '{name}' on this server; "
                               f"shipped: {known}. Or upload your own as the space file.")
    return str(path)


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                archive.write(path, path.name)
    return buffer.getvalue()

