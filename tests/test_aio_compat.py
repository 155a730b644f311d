"""The 3.10 fallback of asyncio.timeout behaves like the 3.11 original."""

from __future__ import annotations

import asyncio

import pytest

from splitbed import aio_compat


async def test_timeout_expires_as_builtin_timeouterror() -> None:
    with pytest.raises(TimeoutError):
        async with aio_compat.timeout(0.01):
            await asyncio.sleep(5)


async def test_timeout_passes_fast_body_and_outer_cancel() -> None:
    async with aio_compat.timeout(5):
        await asyncio.sleep(0)

    async def body() -> None:
        async with aio_compat.timeout(5):
            await asyncio.sleep(5)

    task = asyncio.create_task(body())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_none_means_no_limit() -> None:
    async with aio_compat.timeout(None):
        await asyncio.sleep(0)
