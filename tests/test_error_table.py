"""The one error table: every domain error class carries a gRPC status and an HTTP code, and both transports
use exactly those."""

from __future__ import annotations

import inspect

import grpc
import pytest
from fastapi.testclient import TestClient

from controller.live import LiveSystem
from controller.rest import create_app
from controller.settings import ControllerSettings
from splitbed import errors
from splitbed.grpc_errors import status_for, translate_rpc_error

DEFINED = [obj for _, obj in inspect.getmembers(errors, inspect.isclass)
           if issubclass(obj, errors.SplitbedError) and obj is not errors.SplitbedError]


def test_every_error_class_is_in_the_table():
    assert DEFINED, "no domain error classes found"
    assert set(DEFINED) <= set(errors.error_classes())
    seen_grpc, seen_http = set(), set()
    for cls in DEFINED:
        # Declared on the class itself, not inherited from the INTERNAL / 500 default of the base.
        assert "grpc_code" in vars(cls) and "http_status" in vars(cls), cls
        assert grpc.StatusCode[cls.grpc_code] is not grpc.StatusCode.INTERNAL
        assert 400 <= cls.http_status < 600 and cls.http_status != 500
        seen_grpc.add(cls.grpc_code)
        seen_http.add(cls.http_status)
    assert len(seen_grpc) == len(DEFINED), "two classes share a gRPC code: the client could not tell them apart"


class _FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "details"


@pytest.mark.parametrize("cls", DEFINED, ids=lambda c: c.__name__)
def test_grpc_round_trip(cls):
    code = status_for(cls("x"))
    assert code.name == cls.grpc_code
    assert type(translate_rpc_error(_FakeRpcError(code))) is cls
    assert status_for(ValueError("not ours")) is grpc.StatusCode.INTERNAL


@pytest.mark.parametrize("cls", DEFINED, ids=lambda c: c.__name__)
def test_rest_uses_the_table(cls):
    app = create_app(LiveSystem(ControllerSettings()))

    @app.get("/raise")
    async def _raise() -> None:
        raise cls("boom")

    r = TestClient(app).get("/raise")
    assert r.status_code == cls.http_status
    assert r.json() == {"detail": "boom", "error": cls.__name__}
