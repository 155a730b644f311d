"""Stateless solves (`POST /v1/solve`, gRPC `Solve`, one-device or multi-device) in their own bounded process pool.

They never share the live planner's thread, nor (being in other processes) its
interpreter lock, so a storm of large stateless solves cannot delay a live
re-plan beyond the CPU it takes. The pool is bounded: `workers` solve, at most
`queue` more wait, and beyond that the caller gets 429 (REST) / RESOURCE_EXHAUSTED at
once. Problems cross to the workers as the JSON they arrived as (re-validated
there); nothing is pickled but strings.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import psutil

from controller.multi_planner import MultiPlanner
from controller.multi_problem import MultiProblem
from controller.planner import Planner
from controller.problem import Answer, Problem
from controller.settings import ControllerSettings
from splitbed.errors import InvalidArgument, ResourceExhausted

_planner: Planner | None = None
_multi: MultiPlanner | None = None


def _init_worker(max_iter: int, time_limit_s: float, pids: Any) -> None:
    global _planner, _multi
    pids.put(os.getpid())  # so that close() can stop a busy worker with public calls only
    _planner = Planner(sca_max_iter=max_iter, sca_time_limit_s=time_limit_s)
    _multi = MultiPlanner(_planner)


def _solve_in_worker(problem_json: str, solver: str, scheme: str) -> str:
    assert _planner is not None
    problem = Problem.model_validate_json(problem_json)
    try:
        return _planner.solve(problem, solver=solver, scheme=scheme).model_dump_json()
    except (ArithmeticError, ValueError) as exc:  # numbers in range one by one, out of range together
        raise InvalidArgument(f"problem is numerically out of range for the solver: {exc}") from None


def _solve_multi_in_worker(problem_json: str) -> str:
    assert _multi is not None
    problem = MultiProblem.model_validate_json(problem_json)
    try:
        return _multi.solve(problem).model_dump_json()
    except (ArithmeticError, ValueError) as exc:
        raise InvalidArgument(f"problem is numerically out of range for the solver: {exc}") from None


class SolvePool:
    def __init__(self, settings: ControllerSettings) -> None:
        self.max_splits = settings.max_splits
        self.capacity = settings.solve_workers + settings.solve_queue
        self._pending = 0
        # spawn: a forked copy of a process running gRPC threads is not safe.
        ctx = multiprocessing.get_context("spawn")
        self._pids = ctx.SimpleQueue()
        self._pool = ProcessPoolExecutor(
            max_workers=settings.solve_workers, mp_context=ctx, initializer=_init_worker,
            initargs=(settings.sca_max_iterations, settings.sca_time_limit_s, self._pids))

    def check(self, problem: Problem) -> None:
        if len(problem.splits) > self.max_splits:
            raise InvalidArgument(f"splits: {len(problem.splits)} candidate splits; at most {self.max_splits} "
                                  "(max_splits)")

    def busy(self) -> bool:
        """Every worker busy and the queue full: a new solve would be refused (REST answers 429)."""
        return self._pending >= self.capacity

    async def solve(self, problem: Problem, solver: str, scheme: str) -> str:
        """The answer as JSON; ResourceExhausted when the pool and its queue are full."""
        self.check(problem)
        if solver not in ("exact", "sca"):
            raise InvalidArgument(f"solver: unknown {solver!r}; choose exact or sca")
        return await self._run(_solve_in_worker, problem.model_dump_json(), solver, scheme)

    async def _run(self, fn: Any, *args: str) -> str:
        if self.busy():
            raise ResourceExhausted(f"{self._pending} stateless solves running or queued "
                                    "(solve_workers + solve_queue); retry later")
        self._pending += 1
        try:
            loop = asyncio.get_running_loop()
            return str(await loop.run_in_executor(self._pool, fn, *args))
        finally:
            self._pending -= 1

    async def solve_multi(self, problem: MultiProblem) -> str:
        """The multi-device answer as JSON (the joint planner, exact solver only); limits as `solve`."""
        for i, dev in enumerate(problem.devices):
            if len(dev.splits) > self.max_splits:
                raise InvalidArgument(f"devices.{i}.splits: {len(dev.splits)} candidate splits; at most "
                                      f"{self.max_splits} (max_splits)")
        return await self._run(_solve_multi_in_worker, problem.model_dump_json())

    async def solve_answer(self, problem: Problem, solver: str, scheme: str) -> Answer:
        return Answer.model_validate_json(await self.solve(problem, solver, scheme))

    def close(self) -> None:
        """Stop now: a solve in progress is abandoned (its caller is gone with the server anyway)."""
        # Before Python 3.14 (terminate_workers) the executor cannot stop a busy worker: each worker
        # reported its pid when it started, and is terminated by that.
        while not self._pids.empty():
            with contextlib.suppress(psutil.Error):
                worker = psutil.Process(self._pids.get())
                if worker.ppid() == os.getpid():  # still ours, not a recycled pid
                    worker.terminate()
        self._pool.shutdown(wait=False, cancel_futures=True)
