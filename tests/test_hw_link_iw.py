"""iw transmit-power backend with a fake command runner."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import pytest

from splitbed.channel import rate_bps
from splitbed.errors import FailedPrecondition, PermissionDenied, Unavailable
from splitbed.hw.link import IwLink, make_link
from splitbed.hw.link_iw import dbm_to_watts, watts_to_mbm

B, N0, G = 5e6, 2e-19, 1e-3 * 500 ** -2.8


class FakeIw:
    """Records commands; the 'radio' keeps whole dBm, like most drivers."""

    def __init__(self, *, stderr: str = "", rc: int = 0, info: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.dbm = 20.0
        self.rc, self.stderr, self.info = rc, stderr, info

    def __call__(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        args = list(args)
        self.calls.append(args)
        if self.rc:
            return subprocess.CompletedProcess(args, self.rc, "", self.stderr)
        if args[-3:-1] == ["txpower", "fixed"]:
            self.dbm = round(int(args[-1]) / 100)
        if args[-1] == "info":
            default = f"Interface wlan0\n\ttype managed\n\ttxpower {self.dbm:.2f} dBm\n"
            out = self.info if self.info is not None else default
            return subprocess.CompletedProcess(args, 0, out, "")
        return subprocess.CompletedProcess(args, 0, "", "")


def test_sets_mbm_reads_back_and_labels_rate_as_modelled() -> None:
    fake = FakeIw()
    link = make_link("iw", dev="wlan0", runner=fake)
    applied = link.apply(0.05, bandwidth_hz=B, noise_psd=N0, gain=G)  # 16.99 dBm
    assert fake.calls[0] == ["iw", "dev", "wlan0", "set", "txpower", "fixed", "1699"]
    assert fake.calls[1] == ["iw", "dev", "wlan0", "info"]
    assert applied.power_w == pytest.approx(dbm_to_watts(17.0))
    assert applied.rate_bps == pytest.approx(rate_bps(applied.power_w, B, N0, G))
    assert applied.rate_source == "modelled:r(p)" and not applied.emulated
    assert "17.00 dBm" in applied.detail


def test_close_restores_auto_power() -> None:
    fake = FakeIw()
    link = IwLink("wlan0", runner=fake, netns="ns1")
    link.apply(0.1, bandwidth_hz=B, noise_psd=N0, gain=G)
    link.close()
    assert fake.calls[0][:4] == ["ip", "netns", "exec", "ns1"]
    assert fake.calls[-1][-3:] == ["set", "txpower", "auto"]


def test_permission_error_names_net_admin() -> None:
    fake = FakeIw(rc=1, stderr="command failed: Operation not permitted (-1)")
    with pytest.raises(PermissionDenied, match="NET_ADMIN"):
        IwLink("wlan0", runner=fake).apply(0.1, bandwidth_hz=B, noise_psd=N0, gain=G)


def test_missing_txpower_line_and_missing_binary() -> None:
    with pytest.raises(FailedPrecondition, match="txpower"):
        IwLink("wlan0", runner=FakeIw(info="Interface wlan0\n")).apply(0.1, bandwidth_hz=B, noise_psd=N0, gain=G)

    def absent(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        raise FileNotFoundError(args[0])

    with pytest.raises(Unavailable, match="apt-get install iw"):
        IwLink("wlan0", runner=absent).apply(0.1, bandwidth_hz=B, noise_psd=N0, gain=G)


def test_unit_conversions() -> None:
    assert watts_to_mbm(0.1) == 2000
    assert watts_to_mbm(1.0) == 3000
    assert dbm_to_watts(30.0) == pytest.approx(1.0)
