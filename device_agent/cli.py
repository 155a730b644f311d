"""`device-agent run|calibrate ...`: command-line entry point (flags override AGENT_* environment settings)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from device_agent.settings import AgentSettings
from splitbed.cli_settings import side_main


def _run(settings: AgentSettings) -> int:
    from device_agent.app import run_agent  # torch import deferred until the flags parsed

    return asyncio.run(run_agent(settings))


def _calibrate(settings: AgentSettings, freqs: list[float] | None, as_json: bool) -> int:
    from device_agent.app import calibrate_device

    return calibrate_device(settings, freqs, as_json)


def main(argv: Sequence[str] | None = None) -> int:
    return side_main(
        argv, prog="device-agent", description="Device agent of the split-inference testbed.",
        settings_cls=AgentSettings, run=_run, calibrate=_calibrate,
        command=("run", "run the front layers on the inputs and stream them to an edge server", "WARNING"),
    )
