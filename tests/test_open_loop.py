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


def _dev(dev_id: str, t_device: float, t_upload: float, t_server: float = 0.01) -> DeviceAnswer:
    st = StageBreakdown(t_device=t_device, t_upload=t_upload, t_server=t_server, e_device=0.0, e_upload=0.0,
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


def test_group_plans_let_the_server_finish_the_previous_part_first():
    # a: upload [0, 0.02], server [0.02, 0.08]; b's upload (0.03) then starts at 0.05, not 0.02, and reaches
    # the server at 0.08 when a's part is done; c sends nothing (L = n) and moves nobody.
    answer = MultiAnswer(status="optimal", fairness="sum", objective="bound", u_max=0.9,
                         devices=[_dev("a", 0.01, 0.02, 0.06), _dev("b", 0.04, 0.03, 0.02),
                                  _dev("c", 0.1, 0.0, 0.0), _dev("d", 0.0, 0.01, 0.01)])
    plans = {k: p.config for k, p in group_plans(answer, 1, "m", ControllerSettings(), "test").items()}
    assert (plans["a"].slot_offset_s + 0.01) % 0.5 == pytest.approx(0.0, abs=1e-9)
    assert (plans["b"].slot_offset_s + 0.04) % 0.5 == pytest.approx(0.05)
    # d: after b's upload (ends 0.08) and b's server part (ends 0.10): upload at 0.09
    assert plans["d"].slot_offset_s % 0.5 == pytest.approx(0.09)


def test_open_loop_records_carry_their_keys():
    """Each record is keyed rep-index like the closed loop's, so the writer takes every one of them."""
    import asyncio
    from types import SimpleNamespace

    class Runner:
        settings = SimpleNamespace(warmup=0, repeat=2)
        run_id = "run-1"

        def prepare(self, texts):
            return list(texts)

        async def infer_one(self, inputs, rid):
            return SimpleNamespace(id=None, text=None, rep=None, index=None, run_id=None, seq=None)

    from device_agent.open_loop import run_open_loop
    recs = asyncio.run(run_open_loop(Runner(), ["a", "b"], 200.0, lambda: (0.0, 0.0)))
    assert [f"{r.rep}-{r.index}" for r in recs] == ["0-0", "0-1", "1-0", "1-1"]  # the writer's record_key
    assert [r.seq for r in recs] == [1, 2, 3, 4] and {r.run_id for r in recs} == {"run-1"}
