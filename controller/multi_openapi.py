"""The multi-device form of `POST /v1/solve` in the REST app's OpenAPI schema.

`MultiSolveMiddleware` answers a body with a `devices` list before the route's
own validation (which knows only the one-device `Problem`), so FastAPI cannot
see that form. This adds it: `MultiProblem` and `MultiAnswer` (and the models
they use) as components, the request body as `anyOf [Problem, MultiProblem]`
and the 200 answer as `anyOf [Answer, MultiAnswer]`. A model both forms share
(`ProcessorSpec`, `SplitSpec`, ...) keeps the component FastAPI generated.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from controller.multi_problem import MultiAnswer, MultiProblem

PATH = "/v1/solve"
REF = "#/components/schemas/{model}"


def _add_component(components: dict[str, Any], model: type[BaseModel], mode: str) -> dict[str, str]:
    schema = model.model_json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
    for name, sub in schema.pop("$defs", {}).items():
        components.setdefault(name, sub)
    components[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def with_multi_form(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` (FastAPI's OpenAPI document) with the multi-device form of `POST /v1/solve` added."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    op = schema["paths"][PATH]["post"]
    body = op["requestBody"]["content"]["application/json"]
    body["schema"] = {"anyOf": [body["schema"], _add_component(components, MultiProblem, "validation")],
                      "title": "Problem or MultiProblem"}
    ok = op["responses"]["200"]["content"]["application/json"]
    ok["schema"] = {"anyOf": [ok["schema"], _add_component(components, MultiAnswer, "serialization")],
                    "title": "Answer or MultiAnswer"}
    op["description"] = (
        "A one-device `Problem`, or the multi-device form (`MultiProblem`, recognised by its `devices` list: "
        "K devices sharing one edge server, planned jointly), answered with a `MultiAnswer` (`devices`: one "
        "answer per device; `server_utilisation`, `uplink_utilisation`). The multi-device form is solved with "
        "solver=exact and scheme=joint only.")
    op["responses"].setdefault("413", {"description": "request body too large"})
    op["responses"].setdefault("429", {"description": "every stateless solver is busy and the queue is full"})
    return schema


def document_multi_solve(app: FastAPI) -> None:
    """Make `app.openapi()` (and so /openapi.json and /docs) include the multi-device form."""
    base = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_multi_form(base())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
