"""`edge-server serve|calibrate ...`: command-line entry point (flags override EDGE_* environment settings)."""

from __future__ import annotations

from collections.abc import Sequence

from edge_server.settings import EdgeSettings
from splitbed.cli_settings import side_main


def main(argv: Sequence[str] | None = None) -> int:
    return side_main(
        argv, prog="edge-server", description="Edge server of the split-inference testbed.",
        settings_cls=EdgeSettings, app="edge_server.server", also_reported=(OSError,),
        command=("serve", "serve the back layers of a split model over gRPC", "INFO"),
    )
