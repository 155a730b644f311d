"""A bounded window of recent answers per agent run, so a resent request is answered, not run twice.

An agent resends a request with the same `(run_id, seq)` when its stream broke
before the answer arrived. If this server already answered that id, the
stored answer goes back (marked `replayed`); if the first copy is still being
computed, the resend waits for it. Requests without a run id are served as
they come. Memory is bounded: `per_run` answers for each of the `max_runs`
most recently active runs (least recently used run evicted first).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from splitbed.errors import InvalidArgument
from splitbed.v1 import inference_pb2

logger = logging.getLogger(__name__)

MAX_RUN_ID_CHARS = 128

Serve = Callable[[], Awaitable[inference_pb2.InferResponse]]


class ReplayWindow:
    def __init__(self, *, per_run: int = 64, max_runs: int = 256) -> None:
        self.per_run = per_run
        self.max_runs = max_runs
        self._runs: OrderedDict[str, OrderedDict[int, asyncio.Future[inference_pb2.InferResponse]]] = OrderedDict()
        self.replayed = 0

    def __len__(self) -> int:
        return sum(len(w) for w in self._runs.values())

    def _window(self, run_id: str) -> OrderedDict[int, asyncio.Future[inference_pb2.InferResponse]]:
        window = self._runs.get(run_id)
        if window is None:
            window = self._runs[run_id] = OrderedDict()
            while len(self._runs) > self.max_runs:
                self._runs.popitem(last=False)
        self._runs.move_to_end(run_id)
        return window

    async def answer(self, request: inference_pb2.InferRequest, serve: Serve) -> inference_pb2.InferResponse:
        """The answer to `request`: from the window when its id was seen, else `serve()` (then remembered)."""
        if not request.run_id:
            return await serve()
        if len(request.run_id) > MAX_RUN_ID_CHARS:
            raise InvalidArgument(f"run_id is longer than {MAX_RUN_ID_CHARS} characters")
        window = self._window(request.run_id)
        seen = window.get(request.seq)
        if seen is not None:
            self.replayed += 1
            logger.info("request %s (run %s seq %d) resent; answering from the window", request.request_id,
                        request.run_id, request.seq)
            response = inference_pb2.InferResponse()
            response.CopyFrom(await asyncio.shield(seen))
            response.request_id = request.request_id
            response.replayed = True
            return response
        future: asyncio.Future[inference_pb2.InferResponse] = asyncio.get_running_loop().create_future()
        window[request.seq] = future
        while len(window) > self.per_run:
            window.popitem(last=False)
        try:
            response = await serve()
        except BaseException as exc:
            # A failed request is not remembered: its resend runs again.
            if window.get(request.seq) is future:
                del window[request.seq]
            if not future.done():
                future.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
                future.exception()  # retrieved: no "never retrieved" warning when no resend waits
            raise
        future.set_result(response)
        return response
