"""The edge server's part registry: a superseded version is retired only after its last request."""

from __future__ import annotations

import threading

import pytest

from edge_server.registry import PartRegistry, Served
from splitbed.errors import FailedPrecondition


def _served(version: int, split: int = 2) -> Served:
    return Served(version=version, model="minilm", split=split, rho=1.0, method="structured-magnitude",
                  part=object())


def _versions(reg: PartRegistry) -> list[int]:
    return [s.version for s in reg.versions()]


def test_old_version_stays_until_its_last_request_ends():
    reg = PartRegistry(keep_previous=1)
    reg.install(_served(0))
    with reg.lease(version=0, model="minilm", split=2, rho=1.0) as first:
        reg.install(_served(1, split=3))
        reg.install(_served(2, split=4))
        # v0 is older than the previous version but a request still runs on it.
        assert _versions(reg) == [0, 1, 2]
        with reg.lease(version=0, model="minilm", split=2, rho=1.0) as second:
            assert second is first and first.inflight == 2
        assert _versions(reg) == [0, 1, 2]  # one request still in flight
    assert _versions(reg) == [1, 2]
    assert first.served == 2
    with pytest.raises(FailedPrecondition, match="config version 0 is not served"), \
            reg.lease(version=0, model="minilm", split=2, rho=1.0):
        pass
    # The previous version stays for agents that have not switched yet.
    with reg.lease(version=1, model="minilm", split=3, rho=1.0) as s:
        assert s.version == 1


def test_without_a_kept_previous_an_idle_version_retires_at_once():
    reg = PartRegistry(keep_previous=0)
    reg.install(_served(0))
    reg.install(_served(1))
    assert _versions(reg) == [1]
    assert reg.current is not None and reg.current.version == 1


def test_retirement_waits_for_a_request_on_another_thread():
    reg = PartRegistry(keep_previous=0)
    reg.install(_served(0))
    leased, release = threading.Event(), threading.Event()

    def request() -> None:
        with reg.lease(version=0, model="minilm", split=2, rho=1.0):
            leased.set()
            release.wait(10)

    worker = threading.Thread(target=request)
    worker.start()
    assert leased.wait(10)
    reg.install(_served(1))
    assert _versions(reg) == [0, 1]
    release.set()
    worker.join(10)
    assert _versions(reg) == [1]


def test_a_reinstalled_version_is_refused():
    reg = PartRegistry()
    reg.install(_served(1))
    with pytest.raises(FailedPrecondition, match="already installed"):
        reg.install(_served(1))


def test_every_live_version_is_served_and_a_dropped_one_retires_after_its_last_request():
    """Per-device plans: the server keeps every version a device uses, however many, and only those."""
    reg = PartRegistry(keep_previous=1)
    for v in (1, 2, 3, 4):
        reg.install(_served(v, split=v), live={1, 2, 3, 4})
    assert _versions(reg) == [1, 2, 3, 4]
    with reg.lease(version=1, model="minilm", split=1, rho=1.0) as s:
        reg.install(_served(5, split=2), live={2, 3, 4, 5})  # device of v1 moved to v5
        assert s.inflight == 1 and _versions(reg) == [1, 2, 3, 4, 5]  # v1 still runs a request
    assert _versions(reg) == [2, 3, 4, 5]
    with reg.lease(version=2, model="minilm", split=2, rho=1.0) as s:
        assert s.version == 2


def test_devices_with_the_same_split_ratio_and_method_share_one_part():
    reg = PartRegistry()
    a = _served(1, split=3)
    reg.install(a, live={1})
    assert reg.part_for(3, 1.0, "structured-magnitude") is a.part
    assert reg.part_for(3, 0.5, "structured-magnitude") is None
    assert reg.part_for(2, 1.0, "structured-magnitude") is None
