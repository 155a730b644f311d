"""Nodes played by plain gRPC clients, with TLS, tokens and misbehaviour on demand (for controller tests)."""

from __future__ import annotations

import queue
import threading
import time

import grpc

from splitbed.tls import TlsFiles, sync_channel
from splitbed.v1 import control_pb2, control_pb2_grpc
from tests.test_controller_protocol import profile

__all__ = ["Node", "profile"]


class Node:
    """Registers as `node_id`, watches configs on a thread and acks them (or fails / stays silent)."""

    def __init__(self, address: str, node_id: str, role: str, *, known_version: int = 0, ack: bool = True,
                 fail: bool = False, tls: TlsFiles | None = None, token: str | None = None,
                 watch: bool = True, node_profile: control_pb2.NodeProfile | None = None,
                 serve_address: str = "") -> None:
        self.channel = sync_channel(address, tls or TlsFiles())
        self.profile = node_profile or profile(role)
        self.stub = control_pb2_grpc.ControlServiceStub(self.channel)
        self.node_id, self.role, self.ack, self.fail = node_id, role, ack, fail
        self.metadata = [("authorization", f"Bearer {token}")] if token else None
        self.configs: queue.Queue[control_pb2.Config] = queue.Queue()
        code = control_pb2.ROLE_DEVICE if role == "device" else control_pb2.ROLE_SERVER
        self.stub.Register(control_pb2.RegisterRequest(node_id=node_id, role=code, profile=self.profile,
                                                       address=serve_address, applied_version=known_version),
                           metadata=self.metadata, timeout=10)
        self.stream = None
        self.ended: grpc.StatusCode | None = None
        if watch:
            self.stream = self.stub.WatchConfig(
                control_pb2.WatchConfigRequest(node_id=node_id, known_version=known_version), metadata=self.metadata)
            threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        assert self.stream is not None
        try:
            for config in self.stream:
                self.configs.put(config)
                if config.reprofile:  # as a real node does: measure and report the profile
                    self.stub.ReportTelemetry(control_pb2.TelemetryReport(node_id=self.node_id,
                                                                          profile=self.profile),
                                              metadata=self.metadata, timeout=10)
                if self.ack and not config.reprofile and config.version:
                    self.stub.Ack(control_pb2.AckRequest(
                        node_id=self.node_id, version=config.version, ok=not self.fail,
                        error="out of memory" if self.fail else "", applied=config.knobs),
                        metadata=self.metadata, timeout=10)
        except grpc.RpcError as exc:
            self.ended = exc.code()
        except ValueError:  # closed by the test while acking
            pass

    def next(self, timeout: float = 60) -> control_pb2.Config:
        return self.configs.get(timeout=timeout)

    def drain(self, wait_s: float) -> list[control_pb2.Config]:
        """Every config received within `wait_s` seconds."""
        out, deadline = [], time.monotonic() + wait_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                out.append(self.configs.get(timeout=left))
            except queue.Empty:
                break
        return out

    def close(self) -> None:
        if self.stream is not None:
            self.stream.cancel()
        self.channel.close()
