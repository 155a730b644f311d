"""How long idle OpenMP worker threads spin before they sleep.

By default libgomp's idle workers spin for ~300,000 iterations (up to
milliseconds) after each parallel region. With the agent and the server on one
host (loopback demos, tests, benchmarks) the idle side's spinning threads
steal cores from the busy side: each stage ran ~40 % slower here. Sleeping at
once (OMP_WAIT_POLICY=PASSIVE) fixes that but pays a wake-up per region; a
short spin (GOMP_SPINCOUNT=20000, KMP_BLOCKTIME=1 ms for Intel's runtime) kept
both processes within 1-3 % of the one-process time (bench/overhead.py).
Must run before torch loads its OpenMP runtime; a user's own settings win.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

SPINCOUNT = "20000"


def bound_openmp_spinning(env: MutableMapping[str, str] | None = None) -> None:
    env = os.environ if env is None else env
    if "OMP_WAIT_POLICY" in env:  # the user chose a policy: leave the spin count to it
        return
    env.setdefault("GOMP_SPINCOUNT", SPINCOUNT)
    env.setdefault("KMP_BLOCKTIME", "1")
