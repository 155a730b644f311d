"""controller/conic.py: solving a compiled program by calling Clarabel directly gives what cp.Problem.solve gives.

The joint programs the split search solves (sum, max-min, measured, load, and the price terms) are solved
both ways at the same parameter values: optimum, every variable read back and the coupling duals agree.
"""

from __future__ import annotations

from typing import Any

import cvxpy as cp
import numpy as np
import pytest

from controller.conic import CompiledConic, ConicResult
from controller.joint import JointProgram
from controller.multi_planner import GroupSearch, MultiPlanner
from controller.multi_problem import MultiProblem
from controller.multi_random import random_problem


def _reference(prog: JointProgram) -> tuple[dict[str, Any], Any]:
    """cvxpy's own problem data and Clarabel solution at the values the fast path last used (unpacked into
    the problem's variables and constraints)."""
    for param in prog.problem.parameters():
        param.value = prog.pvals[param.id]
    data, chain, inverse = prog.problem.get_problem_data(cp.CLARABEL, solver_opts={})
    raw = chain.solve_via_data(prog.problem, data, warm_start=False, verbose=False, solver_opts={})
    prog.problem.unpack_results(raw, chain, inverse)
    return data, raw


def _close(a: float, b: float, tol: float = 1e-6) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def _group(k: int, seed: int, **kw: Any) -> GroupSearch:
    prob = MultiProblem.model_validate(random_problem(np.random.default_rng(seed), k, 5, **kw))
    planner = MultiPlanner()
    cases = [planner.device_case(s, p) for s, p in zip(prob.devices, prob.device_problems(), strict=True)]
    return GroupSearch(planner, prob, cases)


def _check(prog: JointProgram, value: float) -> None:
    data, raw = _reference(prog)
    # the same conic problem as cvxpy builds: q, A, b entry for entry
    q, _, a, b = prog.conic.data(prog.pvals)
    assert np.allclose(q, data[cp.settings.C], rtol=1e-12, atol=1e-14)
    assert np.allclose(a.toarray(), data[cp.settings.A].toarray(), rtol=1e-12, atol=1e-14)
    assert np.allclose(b, data[cp.settings.B], rtol=1e-12, atol=1e-14)
    assert prog.problem.status == cp.OPTIMAL
    assert _close(value, float(prog.problem.value)), (value, prog.problem.value)
    # every variable and dual read back from Clarabel's x and z at the indices the probe found
    res = ConicResult("optimal", x=np.asarray(raw.x), z=np.asarray(raw.z))
    for var in prog.problem.variables():
        if var.id in prog.conic.readable:
            assert _close(prog.conic.value(res, var), float(np.asarray(var.value)), 1e-9), var.name()
    for con in prog.coupling + prog.fair_rows:
        assert _close(prog.conic.dual(res, con), float(np.asarray(con.dual_value)), 1e-9), str(con)


@pytest.mark.parametrize(("fairness", "measured"), [("sum", False), ("max-min", False), ("sum", True)])
def test_joint_program_matches_cvxpy(fairness: str, measured: bool) -> None:
    run = _group(3, 7 if measured else 5, fairness=fairness, measured=measured, tight=not measured)
    combos = [run.start, tuple(0 for _ in run.sizes), tuple(n - 1 for n in run.sizes)]
    solved = 0
    for combo in combos:
        if np.isinf(run.quality(combo)):
            continue
        raw = run.raws[combo]
        prog = run.planner.program(run._structure("quality"))
        prog.solve(run.tasks(combo), run.rates, run.weights, run.mp.u_max, run.dscale)  # those values again
        _check(prog, raw.value)
        solved += 1
    assert solved >= 1
    # the price terms (a "sum" group's own program with the coupling rows emptied, or the priced one)
    table = run.bound(next(c for c in combos if c in run.raws and run.raws[c].status == "optimal"))
    assert table is not None and all(np.isfinite(x) for row in table[0] for x in row)


def test_load_mode_matches_cvxpy() -> None:
    run = _group(3, 5, tight=True)
    value = run.load(run.start)
    assert np.isfinite(value)
    _check(run.planner.program(run._structure("load")), value)


def test_probe_refuses_what_it_cannot_read_and_reports_status() -> None:
    x, y = cp.Variable(2, name="x"), cp.Variable(name="y")
    a = cp.Parameter(nonneg=True, name="a")
    prob = cp.Problem(cp.Maximize(y), [y <= a * 2, y >= 0, cp.sum(x) == 1])
    with pytest.raises(AssertionError, match="variable x"):
        CompiledConic(prob, [x])  # a vector is not one entry
    conic = CompiledConic(prob, [y], [prob.constraints[0]])
    res = conic.solve({a.id: 3.0})
    assert res.status == "optimal" and _close(res.value, 6.0) and _close(conic.value(res, y), 6.0)
    assert _close(conic.dual(res, prob.constraints[0]), 1.0)
    with pytest.raises(ValueError, match="nonnegative"):
        conic.solve({a.id: -1.0})
    bad = cp.Problem(cp.Minimize(y), [y >= a, y <= -1])
    assert CompiledConic(bad, [y]).solve({a.id: 0.0}).status == "infeasible"
