"""Static checks that the runtime packages keep to Python 3.10 (JetPack 6).

mypy (python_version 3.10) and ruff (target py310) catch 3.11-only APIs such as
asyncio.timeout. What they cannot catch is a semantic difference: on 3.10,
`asyncio.wait_for` raises asyncio.TimeoutError, which is *not* the builtin
TimeoutError, so `except TimeoutError` around a wait_for silently misses it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("splitbed", "device_agent", "edge_server", "controller")


def _calls_wait_for(nodes: list[ast.stmt]) -> bool:
    for node in nodes:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "wait_for":
                return True
    return False


def _catches_only_builtin_timeout(handler: ast.ExceptHandler) -> bool:
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    builtin = any(isinstance(n, ast.Name) and n.id == "TimeoutError" for n in names)
    aio = any(isinstance(n, ast.Attribute) and n.attr == "TimeoutError" for n in names)
    return builtin and not aio


def test_wait_for_timeouts_are_caught_as_asyncio_timeouterror() -> None:
    bad = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if "/v1/" in path.as_posix():
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Try) and _calls_wait_for(node.body):
                    bad += [f"{path.relative_to(ROOT)}:{h.lineno}" for h in node.handlers
                            if h.type is not None and _catches_only_builtin_timeout(h)]
    assert not bad, "catch asyncio.TimeoutError around wait_for (3.10 raises it, not TimeoutError): " + ", ".join(bad)


def test_project_declares_python_310() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.10"' in text
    assert 'target-version = "py310"' in text
    assert 'python_version = "3.10"' in text
