"""``POST /recommend``: an instant answer, no search."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from archsearch.api.deps import GUARDED, Config, RecommendForm, RequestUploads
from archsearch.api.form_stream import openapi_form
from archsearch.api.forms import (
    RECOMMEND_FORM,
    data_source,
    parse_constraints,
    parse_options,
    search_space,
)
from archsearch.api.problems import ERRORS, HttpProblem
from archsearch.api.schemas import RecommendOptions
from archsearch.data import LoadOptions
from archsearch.errors import ArchsearchError

router = APIRouter(dependencies=GUARDED, responses=ERRORS)


@router.post("/recommend", openapi_extra=openapi_form(RECOMMEND_FORM))
def recommend_now(config: Config, saved: RequestUploads, form: RecommendForm) -> dict[str, Any]:
    """An instant answer from the rules, the data set's meta-features and the past tasks
    in the database: no training."""
    from archsearch.recommend import advise

    try:
        chosen = parse_options(RecommendOptions, form.text["options"])
        constraints = parse_constraints(chosen.constraints)
        space_file = search_space(chosen.space, None)
        data = data_source(form.files.get("dataset"), form.text.get("builtin"))
        return advise(data, constraints, config.db_url,
                      load=LoadOptions(task=chosen.task, limits=config.limits),
                      space=space_file).to_json()
    except ArchsearchError as exc:
        raise HttpProblem(422, saved.in_client_names(str(exc))) from None
    finally:
        saved.discard()  # an instant answer keeps nothing
