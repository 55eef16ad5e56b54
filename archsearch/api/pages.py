"""The public routes: the health check and the HTML pages, shells rendered by Jinja2
(autoescaped) that hold no task data themselves.

Their inline script fetches the JSON API with the bearer token (kept in the tab's
sessionStorage, taken from a ``#token=...`` fragment, which never reaches a server log) and
writes every value with ``textContent``, so nothing a task holds is ever parsed as HTML.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from archsearch.api.deps import Dashboard, TaskId

PAGES = "/ui/"  # the live pages' shells: public, they hold no task data
PUBLIC = frozenset({"/", "/health"})  # with every path under PAGES

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True, undefined=jinja2.StrictUndefined,
)

router = APIRouter(include_in_schema=False)


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/", response_class=HTMLResponse)
def front_page() -> str:
    return _TEMPLATES.get_template("index.html.j2").render()


@router.get(PAGES + "tasks/{task_id}", response_class=HTMLResponse)
def live_page(task_id: TaskId, dashboard: Dashboard) -> str:
    return _TEMPLATES.get_template("task.html.j2").render(task_id=task_id,
                                                          dashboard_url=dashboard)
