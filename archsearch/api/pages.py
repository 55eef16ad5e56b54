"""The HTML pages: shells rendered by Jinja2 (autoescaped) that hold no task data themselves.

Their inline script fetches the JSON API with the bearer token (kept in the tab's
sessionStorage, taken from a ``#token=...`` fragment, which never reaches a server log) and
writes every value with ``textContent``, so nothing a task holds is ever parsed as HTML.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True, undefined=jinja2.StrictUndefined,
)


def front_page() -> str:
    return _TEMPLATES.get_template("index.html.j2").render()


def live_page(task_id: int, dashboard_url: str) -> str:
    return _TEMPLATES.get_template("task.html.j2").render(task_id=task_id,
                                                          dashboard_url=dashboard_url)
