"""``POST /recommend``: an instant answer, no search."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile

from archsearch.api.deps import GUARDED, Config, RequestUploads
from archsearch.api.forms import data_source, parse_constraints, parse_options, search_space
from archsearch.api.problems import ERRORS, HttpProblem
from archsearch.api.schemas import RecommendOptions
from archsearch.data import LoadOptions
from archsearch.errors import ArchsearchError

router = APIRouter(dependencies=GUARDED, responses=ERRORS)


@router.post("/recommend")
def recommend_now(config: Config, saved: RequestUploads,
                  dataset: Annotated[UploadFile | None, File(
                      description="the data set (as for POST /tasks)")] = None,
                  builtin: Annotated[str | None, Form(
                      description="instead of a file: builtin:NAME[?key=value&...]",
                      max_length=500)] = None,
                  options: Annotated[str, Form(description="RecommendOptions as "
                                               "JSON")] = "{}") -> dict[str, Any]:
    """An instant answer from the rules, the data set's meta-features and the past tasks
    in the database: no training."""
    from archsearch.recommend import advise

    chosen = parse_options(RecommendOptions, options)
    constraints = parse_constraints(chosen.constraints)
    try:
        space_file = search_space(chosen.space, None, saved)
        data = data_source(dataset, builtin, saved)
        return advise(data, constraints, config.db_url,
                      load=LoadOptions(task=chosen.task, limits=config.limits),
                      space=space_file).to_json()
    except ArchsearchError as exc:
        raise HttpProblem(422, saved.in_client_names(str(exc))) from None
    finally:
        saved.discard()  # an instant answer keeps nothing
