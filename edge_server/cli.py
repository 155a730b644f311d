"""`edge-server serve|calibrate ...`: command-line entry point (flags override EDGE_* environment settings)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from edge_server.settings import EdgeSettings
from splitbed.cli_settings import side_main


def _serve(settings: EdgeSettings) -> int:
    from edge_server.server import EdgeServer  # torch import deferred until the flags parsed

    asyncio.run(EdgeServer(settings).run())
    return 0


def _calibrate(settings: EdgeSettings, freqs: list[float] | None, as_json: bool) -> int:
    from edge_server.server import calibrate_server

    return calibrate_server(settings, freqs, as_json)


def main(argv: Sequence[str] | None = None) -> int:
    return side_main(
        argv, prog="edge-server", description="Edge server of the split-inference testbed.",
        settings_cls=EdgeSettings, run=_serve, calibrate=_calibrate, also_reported=(OSError,),
        command=("serve", "serve the back layers of a split model over gRPC", "INFO"),
    )
