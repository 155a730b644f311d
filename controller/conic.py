"""A DPP cvxpy problem compiled once, then solved by calling Clarabel directly.

`cp.Problem.solve` on a compiled DPP problem still costs several milliseconds of
Python per call beyond Clarabel's own time: it re-runs the solver interface,
inverts the solution through every reduction (setting and validating the value of
every variable and every dual), and evaluates expressions through their atom
trees. The split search solves the same joint program hundreds of times, so this
overhead was most of a plan's time.

`CompiledConic` keeps cvxpy for modelling and compiling (the parameter-to-matrix
map is built once) and, per solve, only multiplies that map by the parameter
values (given by the caller, not set on the `cp.Parameter`s, whose setters
validate each value at some cost), calls Clarabel, and reads the variables and
duals it was asked for by their index in Clarabel's x and z. The indices are found once, by inverting a probe solution
(x_i = i + 1, z_j = j + 1) through cvxpy's own reduction chain, so they follow
whatever that chain does; a variable or dual that does not come back as a single
entry of x or z (with sign) is refused at compile time rather than misread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import clarabel
import cvxpy as cp
import numpy as np
import scipy.sparse as sp
from cvxpy import settings as cps
from cvxpy.lin_ops import CONSTANT_ID
from cvxpy.reductions.solvers.conic_solvers.clarabel_conif import dims_to_solver_cones

logger = logging.getLogger(__name__)

# Clarabel's status -> ours: optimal (accurate or not), infeasible (accurate or not), or a failure to retry.
_OPTIMAL = {"Solved", "AlmostSolved"}
_INFEASIBLE = {"PrimalInfeasible", "AlmostPrimalInfeasible"}
_RETRY = {"NumericalError", "InsufficientProgress", "Unsolved"}
# Clarabel options to retry with when it stops for lack of progress (rare, near a constraint's edge):
# a shorter step, then no equilibration. Each solved every such case met in the random tests.
RETRIES: tuple[dict[str, float | bool], ...] = ({}, {"max_step_fraction": 0.9}, {"equilibrate_enable": False})


@dataclass
class ConicResult:
    """One solve: `status` is "optimal" | "infeasible" | "error" | "retry"; values only when optimal."""

    status: str
    value: float = float("nan")  # the objective as cvxpy reports it (a Maximize is not negated)
    x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    z: np.ndarray = field(default_factory=lambda: np.zeros(0))
    message: str | None = None
    solve_time_s: float = 0.0
    inaccurate: bool = False  # Clarabel's "almost" solved / infeasible (reduced tolerances)


class _Probe:
    """Stands in for Clarabel's solution object when mapping indices through cvxpy's inverse chain."""

    def __init__(self, n: int, m: int) -> None:
        self.x = list(np.arange(1.0, n + 1.0))
        self.z = list(np.arange(1.0, m + 1.0))
        self.s = [0.0] * m
        self.status = "Solved"
        self.obj_val = 0.0
        self.solve_time = 0.0
        self.iterations = 0


def _index(value: Any, size: int, what: str) -> tuple[int, float]:
    """(index, sign) of a probed scalar that must be +-(i + 1) for one i in [0, size)."""
    v = float(np.asarray(value).reshape(-1)[0]) if value is not None and np.asarray(value).size == 1 else None
    if v is None or v != round(v) or not 1 <= abs(v) <= size:
        raise AssertionError(f"{what} is not one entry of Clarabel's vector (probe gave {value!r})")
    return int(abs(v)) - 1, 1.0 if v > 0 else -1.0


class CompiledConic:
    """`problem` compiled for Clarabel; `variables` and `duals` are what a solve can read back.

    Every variable read must be a scalar; every dual a scalar inequality's (e.g. `expr <= u`).
    """

    def __init__(self, problem: cp.Problem, variables: Iterable[cp.Variable],
                 duals: Iterable[cp.Constraint] = ()) -> None:
        t0 = time.perf_counter()
        self.problem = problem
        data, chain, inverse = problem.get_problem_data(cp.CLARABEL, solver_opts={})
        prog = data[cps.PARAM_PROB]
        self._cones = dims_to_solver_cones(data["dims"])
        n, m = data[cps.C].size, data[cps.B].size
        self._n, self._m = n, m
        self._p = sp.csc_matrix((n, n))
        # The parameter vector's layout: (column, size, parameter) per parameter; the constant 1 at its column.
        self._size = prog.total_param_size + 1
        self._const_col = prog.param_id_to_col[CONSTANT_ID]
        self._layout = [(col, prog.param_id_to_size[pid], prog.id_to_param[pid])
                        for pid, col in prog.param_id_to_col.items() if pid != CONSTANT_ID]
        # (q, d) = Q @ params; the nonzeros of [A | b] (CSC, b the last column) = R @ params. Every entry a
        # parameter can touch is kept, even at 0, so the sparsity pattern does not depend on the values.
        self._q = sp.csr_matrix(prog.q)
        reduced = prog.reduced_A
        reduced.cache()
        indices, indptr, _ = reduced.problem_data_index
        self._r = sp.csr_matrix(reduced.reduced_mat)
        self._a_nnz = int(indptr[n])
        self._a_indices, self._a_indptr = np.asarray(indices[: self._a_nnz]), np.asarray(indptr[: n + 1])
        self._b_index = np.asarray(indices[self._a_nnz:])
        probe = chain.invert(_Probe(n, m), inverse)
        self._col: dict[int, tuple[int, float]] = {}
        for var in variables:
            self._col[var.id] = _index(probe.primal_vars.get(var.id), n, f"variable {var.name()}")
        self._row: dict[int, tuple[int, float]] = {}
        for con in duals:
            self._row[con.id] = _index(probe.dual_vars.get(con.id), m, f"the dual of {con}")
        self._maximize = isinstance(problem.objective, cp.Maximize)
        self.compile_time_s = time.perf_counter() - t0

    def data(self, values: Mapping[int, Any]) -> tuple[np.ndarray, float, sp.csc_matrix, np.ndarray]:
        """(q, d, A, b) of Clarabel's problem (min q'x + d, Ax + s = b, s in the cones) at `values`.

        `values`: parameter id -> value, for every parameter. A nonneg parameter given a negative
        value is refused, as cvxpy would (the program is convex only for the signs it was built with).
        """
        vec = np.zeros(self._size)
        vec[self._const_col] = 1.0
        for col, size, param in self._layout:
            value = np.asarray(values[param.id], dtype=float)
            if value.size != size:
                raise ValueError(f"parameter {param.name()}: {value.size} values, expected {size}")
            flat = value.reshape(-1, order="F")
            if param.is_nonneg() and (flat < 0).any():
                raise ValueError(f"parameter {param.name()} must be nonnegative")
            vec[col:col + size] = flat
        qd = self._q @ vec
        entries = self._r @ vec
        a = sp.csc_matrix((-entries[: self._a_nnz], self._a_indices, self._a_indptr), shape=(self._m, self._n))
        b = np.zeros(self._m)
        b[self._b_index] = entries[self._a_nnz:]
        return qd[: self._n], float(qd[self._n]), a, b

    def solve(self, values: Mapping[int, Any], options: Mapping[str, float | bool] | None = None) -> ConicResult:
        """One solve at `values` (see `data`); "retry" when Clarabel stalled (try other options)."""
        t0 = time.perf_counter()
        q, d, a, b = self.data(values)
        settings = clarabel.DefaultSettings()
        settings.verbose = False
        for key, value in (options or {}).items():
            setattr(settings, key, value)
        solution = clarabel.DefaultSolver(self._p, q, a, b, self._cones, settings).solve()
        status = str(solution.status)
        elapsed = time.perf_counter() - t0
        if status in _OPTIMAL:
            value = float(solution.obj_val) + float(d)
            # cvxpy hands Clarabel -objective for a Maximize and reports it back negated
            return ConicResult("optimal", -value if self._maximize else value, np.asarray(solution.x),
                               np.asarray(solution.z), solve_time_s=elapsed, inaccurate=status.startswith("Almost"))
        if status in _INFEASIBLE:
            return ConicResult("infeasible", solve_time_s=elapsed, inaccurate=status.startswith("Almost"))
        if status in _RETRY:
            return ConicResult("retry", message=f"Clarabel: {status}", solve_time_s=elapsed)
        return ConicResult("error", message=f"Clarabel: {status}", solve_time_s=elapsed)

    def solve_retrying(self, values: Mapping[int, Any],
                       retries: Sequence[Mapping[str, float | bool]]) -> ConicResult:
        """`solve` with each of `retries`' options in turn until Clarabel does not stall."""
        res = ConicResult("error", message="no attempt")
        spent = 0.0
        for options in retries:
            res = self.solve(values, options)
            spent += res.solve_time_s
            if res.status != "retry":
                break
            logger.debug("Clarabel stalled (%s) with %s", res.message, options)
        res.solve_time_s = spent
        if res.status == "retry":
            res.status = "error"
        return res

    @property
    def readable(self) -> set[int]:
        """Ids of the variables `value` can read."""
        return set(self._col)

    def value(self, res: ConicResult, var: cp.Variable) -> float:
        i, sign = self._col[var.id]
        return sign * float(res.x[i])

    def dual(self, res: ConicResult, con: cp.Constraint) -> float:
        j, sign = self._row[con.id]
        return sign * float(res.z[j])
