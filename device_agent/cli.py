"""`device-agent run|calibrate ...`: command-line entry point (flags override AGENT_* environment settings)."""

from __future__ import annotations

from collections.abc import Sequence

from device_agent.settings import AgentSettings
from splitbed.cli_settings import side_main


def _interrupted(settings: AgentSettings) -> str:
    # Every completed request is already on disk (records are written as they complete).
    return f"interrupted; completed records are in {settings.out} (--resume continues)"


def main(argv: Sequence[str] | None = None) -> int:
    return side_main(
        argv, prog="device-agent", description="Device agent of the split-inference testbed.",
        settings_cls=AgentSettings, app="device_agent.app", interrupted=_interrupted,
        command=("run", "run the front layers on the inputs and stream them to an edge server", "WARNING"),
    )
