"""The multi-device form of `POST /v1/solve` is in the controller's OpenAPI document, and real traffic matches it."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

from tests.launch import start_controller
from tests.test_multi_service import MULTI, ONE


@pytest.fixture(scope="module")
def served():
    proc = start_controller()
    try:
        doc = httpx.get(f"{proc.rest_url}/openapi.json", timeout=30).json()
        yield proc, doc
    finally:
        assert proc.stop() == 0, proc.output()


def _validator(doc: dict[str, Any], name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": doc["components"]})


def test_solve_operation_lists_both_forms(served) -> None:
    _, doc = served
    op = doc["paths"]["/v1/solve"]["post"]
    refs = [s["$ref"] for s in op["requestBody"]["content"]["application/json"]["schema"]["anyOf"]]
    assert refs == ["#/components/schemas/Problem", "#/components/schemas/MultiProblem"]
    answers = [s["$ref"] for s in op["responses"]["200"]["content"]["application/json"]["schema"]["anyOf"]]
    assert answers == ["#/components/schemas/Answer", "#/components/schemas/MultiAnswer"]
    multi = doc["components"]["schemas"]["MultiProblem"]
    assert {"server", "link", "devices"} <= set(multi["required"])
    answer = doc["components"]["schemas"]["MultiAnswer"]["properties"]
    assert {"devices", "server_utilisation", "uplink_utilisation", "status"} <= set(answer)


def test_schemas_accept_real_bodies_and_refuse_bad_ones(served) -> None:
    proc, doc = served
    problem, one = _validator(doc, "MultiProblem"), _validator(doc, "Problem")
    problem.validate(MULTI)
    one.validate(ONE)
    assert not problem.is_valid(ONE) and not one.is_valid(MULTI)  # the two forms do not overlap
    bad = copy.deepcopy(MULTI)
    bad["devices"][0]["budget"]["latency_s"] = -1
    assert not problem.is_valid(bad)
    r = httpx.post(f"{proc.rest_url}/v1/solve", json=MULTI, timeout=180)
    assert r.status_code == 200, r.text
    _validator(doc, "MultiAnswer").validate(r.json())
    r = httpx.post(f"{proc.rest_url}/v1/solve", json=ONE, timeout=60)
    assert r.status_code == 200, r.text
    _validator(doc, "Answer").validate(r.json())
