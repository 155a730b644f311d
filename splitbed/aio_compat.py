"""asyncio pieces that Python 3.10 lacks.

The device agent must run on JetPack 6 (Ubuntu 22.04, Python 3.10, NVIDIA's cp310
torch wheels), so the agent and the core it imports keep to 3.10's standard
library (and catches `asyncio.TimeoutError` from `wait_for`: on 3.10 it is
not the builtin TimeoutError). `make test` type-checks with ``mypy --python-version 3.10`` and ruff's
``py310`` target; ``make test-py310`` runs the agent, codec and controller tests
on a real 3.10 interpreter.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["timeout"]

if sys.version_info >= (3, 11):
    from asyncio import timeout
else:

    @asynccontextmanager
    async def timeout(delay: float | None) -> AsyncIterator[None]:
        """`asyncio.timeout` for 3.10: cancels the body after `delay` s and raises TimeoutError.

        A timer handle, not `wait_for`, so the hot path creates no extra task.
        """
        if delay is None:
            yield
            return
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("timeout() must be used inside a task")
        fired = False

        def expire() -> None:
            nonlocal fired
            fired = True
            task.cancel()

        handle = asyncio.get_running_loop().call_later(delay, expire)
        try:
            yield
        except asyncio.CancelledError:
            if fired:
                raise TimeoutError(f"timed out after {delay} s") from None
            raise
        finally:
            handle.cancel()
