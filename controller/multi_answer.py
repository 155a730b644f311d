"""Assemble a multi-device answer: per-device plans and shared loads, or why there is none.

Loads and utilisations are re-evaluated from the plain formulas at the
recovered knobs (lambda_k times the stage times of eqs. 6 and 8), never taken
from a solver's variables.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from controller.joint import JointRaw
from controller.multi_problem import DeviceAnswer, MultiAnswer, MultiProblem, SearchReport
from controller.problem import SplitAnswer

if TYPE_CHECKING:
    from controller.multi_planner import DeviceCase


def device_answers(
    mp: MultiProblem,
    cases: Sequence[DeviceCase],
    answers: Sequence[SplitAnswer],
    objective_value: float,
    report: SearchReport,
    elapsed_s: float,
) -> MultiAnswer:
    out = []
    for case, ans in zip(cases, answers, strict=True):
        rate = case.spec.rate
        st = ans.stage
        assert st is not None
        out.append(DeviceAnswer(**ans.model_dump(), id=case.spec.id, rate_hz=rate,
                                server_load=rate * st.t_server, uplink_load=rate * st.t_upload))
    return MultiAnswer(
        status="optimal",
        fairness=mp.fairness,
        objective=mp.objective,
        objective_value=objective_value,
        devices=out,
        server_utilisation=sum(d.server_load or 0.0 for d in out),
        uplink_utilisation=sum(d.uplink_load or 0.0 for d in out),
        u_max=mp.u_max,
        search=report,
        solve_time_s=elapsed_s,
    )


def infeasible_answer(
    mp: MultiProblem,
    cases: Sequence[DeviceCase],
    least: JointRaw | None,
    elapsed_s: float,
    report: SearchReport | None = None,
) -> MultiAnswer:
    """Devices infeasible alone are named; otherwise the group is over u_max on a shared resource."""
    alone_bad = [c.spec.id for c in cases if not c.candidates]
    out = []
    for i, case in enumerate(cases):
        rate = case.spec.rate
        if case.alone is not None:
            base = case.alone.model_dump(exclude={"per_split"})
            base["message"] = "infeasible alone: no split meets this device's own latency and energy budgets" + (
                f" ({base['message']})" if base.get("message") else "")
            out.append(DeviceAnswer(**base, id=case.spec.id, rate_hz=rate))
            continue
        if alone_bad:
            msg = f"feasible alone (best split {case.best_split}); not planned: {', '.join(alone_bad)} infeasible alone"
            loads: tuple[float | None, float | None] = (None, None)
        else:
            msg = f"feasible alone (best split {case.best_split}); infeasible together: the shared server or " \
                  f"uplink would exceed u_max = {mp.u_max:g}"
            loads = least.loads[i] if least is not None else (None, None)
        out.append(DeviceAnswer(status="infeasible", message=msg, objective=mp.objective, id=case.spec.id,
                                rate_hz=rate, server_load=loads[0], uplink_load=loads[1]))
    if alone_bad:
        message = f"infeasible: device(s) {', '.join(alone_bad)} cannot meet their own budgets at any split"
    else:
        message = f"infeasible: every device is feasible alone, but no split combination keeps the server and the " \
                  f"uplink utilisation within u_max = {mp.u_max:g}"
        if least is not None:
            message += f" (least found: server {least.server_load:.3g}, uplink {least.uplink_load:.3g})"
    return MultiAnswer(
        status="infeasible", message=message, fairness=mp.fairness, objective=mp.objective, devices=out,
        server_utilisation=least.server_load if least is not None else None,
        uplink_utilisation=least.uplink_load if least is not None else None,
        u_max=mp.u_max, search=report, solve_time_s=elapsed_s,
    )
