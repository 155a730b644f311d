"""Prometheus metrics of a process: stage latency histograms, energy, config version, prediction error.

Each process owns one `Metrics` (its own registry, so tests can run several
in one interpreter) and exposes it with `serve(port)` or, in the
controller, on its REST app at /metrics.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.exposition import generate_latest

from splitbed.grpc_catchall import UNHANDLED

logger = logging.getLogger(__name__)

# 0.5 ms .. ~16 s, doubling: loopback round trips to emulated slow links.
BUCKETS = tuple(0.0005 * 2**i for i in range(16))


class Metrics:
    def __init__(self, role: str) -> None:
        self.role = role
        self.registry = CollectorRegistry()
        self.stage_seconds = Histogram(
            "splitbed_stage_seconds", "Measured time of one pipeline stage per request (perf_counter).",
            ["role", "stage"], buckets=BUCKETS, registry=self.registry,
        )
        self.energy_joules = Counter(
            "splitbed_energy_joules", "Energy per stage, summed over requests; `source` says measured or modelled.",
            ["role", "stage", "source"], registry=self.registry,
        )
        self.requests = Counter("splitbed_requests", "Requests completed.", ["role"], registry=self.registry)
        self.errors = Counter("splitbed_errors", "Requests rejected, by status.", ["role", "code"],
                              registry=self.registry)
        self.config_version = Gauge("splitbed_config_version", "Config (plan) version applied.", ["role"],
                                    registry=self.registry)
        self.prediction_error = Gauge(
            "splitbed_latency_prediction_error", "(measured - predicted) / predicted end-to-end latency, last request.",
            ["role"], registry=self.registry,
        )
        self.registry.register(UNHANDLED)
        self.knob = Gauge("splitbed_applied_knob", "Knob value actually applied (snapped), SI units.",
                          ["role", "knob"], registry=self.registry)

    def observe_stages(self, timings: dict[str, float]) -> None:
        for stage, seconds in timings.items():
            self.stage_seconds.labels(self.role, stage.removesuffix("_s")).observe(seconds)
        self.requests.labels(self.role).inc()

    def observe_energy(self, stage: str, joules: float, source: str) -> None:
        if joules > 0:
            self.energy_joules.labels(self.role, stage, source).inc(joules)

    def applied(self, version: int, knobs: dict[str, Any]) -> None:
        self.config_version.labels(self.role).set(version)
        for name, value in knobs.items():
            if isinstance(value, int | float):
                self.knob.labels(self.role, name).set(float(value))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Expose /metrics over HTTP; returns the bound port (0 picks a free one)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        bound = int(server.server_address[1])
        logger.info("metrics on http://%s:%d/metrics", host, bound)
        return bound
