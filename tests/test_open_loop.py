"""Open-loop slots: start times on the period grid at the offset, and the TDMA offsets of per-device plans."""

from __future__ import annotations

import pytest

from controller.live_group import group_plans
from controller.multi_problem import DeviceAnswer, MultiAnswer
from controller.problem import StageBreakdown
from controller.settings import ControllerSettings
from device_agent.open_loop import next_start


def test_next_start_is_on_the_grid_at_the_offset():
    assert next_start(10.0, 0.5, 0.1) == pytest.approx(10.1)
    assert next_start(10.1, 0.5, 0.1) == pytest.approx(10.1)
    assert next_start(10.2, 0.5, 0.1) == pytest.approx(10.6)


def _dev(dev_id: str, t_device: float, t_upload: float) -> DeviceAnswer:
    st = StageBreakdown(t_device=t_device, t_upload=t_upload, t_server=0.01, e_device=0.0, e_upload=0.0,
                        e_server=0.0)
    return DeviceAnswer(id=dev_id, rate_hz=2.0, status="optimal", split=3, rho_device=1.0, rho_server=1.0,
                        power_w=0.1, freq_device_hz=1e9, freq_server_hz=2e9, latency_s=0.2, energy_j=0.01, stage=st)


def test_group_plans_put_each_upload_after_the_previous_one():
    answer = MultiAnswer(status="optimal", fairness="sum", objective="bound", u_max=0.9,
                         devices=[_dev("b", 0.05, 0.03), _dev("a", 0.02, 0.04)])
    plans = group_plans(answer, 7, "m", ControllerSettings(), "test")
    a, b = plans["a"].config, plans["b"].config
    assert (a.version, b.version) == (7, 8) and (a.device_id, b.device_id) == ("a", "b")
    assert a.period_s == pytest.approx(0.5) and b.period_s == pytest.approx(0.5)
    # a's upload starts at 0 (offset = -t_device mod period), b's when a's ends (0.04 s).
    assert (a.slot_offset_s + 0.02) % 0.5 == pytest.approx(0.0, abs=1e-9)
    assert (b.slot_offset_s + 0.05) % 0.5 == pytest.approx(0.04)
