"""Running system tools (tc, iw, nvpmodel) through an injectable runner.

Tests pass a fake runner that records command lines and returns canned
output; production uses ``run_command`` (subprocess, no shell, bounded time).
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Sequence

logger = logging.getLogger(__name__)

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def run_command(args: Sequence[str], timeout_s: float = 10.0) -> subprocess.CompletedProcess[str]:
    """Run ``args`` without a shell; a missing binary raises FileNotFoundError."""
    logger.debug("running %s", " ".join(args))
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout_s, check=False)


def in_netns(netns: str | None, args: Sequence[str], ip: str = "ip") -> list[str]:
    """``args`` prefixed to run inside network namespace ``netns`` (unchanged when None)."""
    return [ip, "netns", "exec", netns, *args] if netns else list(args)
