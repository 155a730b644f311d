"""Warm planning service core: cached compiled programs, one call per problem.

`Planner` keeps one compiled `ExactProgram` per structure (which stages exist,
which knobs are pinned, what is optimised) and one `ScaProgram` likewise, so
after the first solve of a kind every re-solve only writes parameter values.
"""

from __future__ import annotations

import logging
import time
from typing import Literal

from controller.discrete import applied_step, on_steps, step_tasks
from controller.exact import ExactProgram, Mode, RawSolution, Structure, recover_knobs
from controller.measured import fit_convex_decreasing
from controller.problem import Answer, Problem, SplitAnswer, SplitSpec, StageBreakdown
from controller.sca import ScaProgram, ScaResult, phase1_start, run_sca
from controller.schemes import apply_scheme
from controller.search import search
from controller.system_model import Knobs, PiecewiseLinear, SplitTask
from splitbed.errors import InvalidArgument

logger = logging.getLogger(__name__)

SolverName = Literal["exact", "sca"]
SOLVERS: tuple[str, ...] = ("exact", "sca")
# A recovered plan may exceed a budget by this much (relative) before we warn.
FEASIBILITY_RTOL = 1e-6


FitCache = dict[tuple[tuple[float, float], ...], PiecewiseLinear]


def tasks_for(problem: Problem, fits: FitCache | None = None) -> list[SplitTask]:
    """One SplitTask per candidate split (only the pinned one if `pins.split` is set)."""
    pins = problem.pins
    cache = fits if fits is not None else {}

    def fit(points: list[tuple[float, float]], name: str) -> PiecewiseLinear:
        key = tuple(sorted((float(r), float(d)) for r, d in points))
        if key not in cache:
            cache[key] = fit_convex_decreasing(points, name)
        return cache[key]

    tasks = []
    for i, spec in enumerate(problem.splits):
        if pins.split is not None and spec.split != pins.split:
            continue
        tasks.append(_task(problem, spec, i, fit))
    return tasks


def _bounds(pin: float | None, floor: float, empty: bool) -> tuple[float, float]:
    if empty:
        return 1.0, 1.0  # nothing on that side to prune
    return (pin, pin) if pin is not None else (floor, 1.0)


def _task(problem: Problem, spec: SplitSpec, index: int, fit) -> SplitTask:  # type: ignore[no-untyped-def]
    pins = problem.pins
    model = problem.split_model(spec)
    dev_empty = spec.device_params == 0.0 and spec.device_flops == 0.0
    srv_empty = spec.server_params == 0.0 and spec.server_flops == 0.0
    rho_lo, rho_hi = _bounds(pins.rho_device, problem.rho_min_device, dev_empty)
    rho_s_lo, rho_s_hi = _bounds(pins.rho_server, problem.rho_min_server, srv_empty)
    fit_d = fit_s = None
    if problem.objective == "measured":
        pts = problem.points_for(spec)
        assert pts is not None  # checked by Problem's validator
        where = f"splits[{index}].distortion_points" if spec.distortion_points is not None else "distortion_points"
        if spec.device_params > 0.0:
            fit_d = fit(pts.device, f"{where}.device")
        if spec.server_params > 0.0:
            fit_s = fit(pts.server, f"{where}.server")
    # A pinned clock is planned, and predicted, at the step the hardware will really apply.
    f_dev = None if pins.freq_device_hz is None else applied_step(pins.freq_device_hz, model.device)
    f_srv = None if pins.freq_server_hz is None else applied_step(pins.freq_server_hz, model.server)
    return SplitTask(
        model, problem.budget.latency_s, problem.budget.energy_j, rho_lo, rho_hi, rho_s_lo, rho_s_hi,
        pins.power_w, f_dev, f_srv, fit_d, fit_s,
    )


def answer_from_knobs(task: SplitTask, knobs: Knobs, *, solver: str, scheme: str, solve_time_s: float) -> SplitAnswer:
    """Evaluate the plain formulas at the recovered knobs."""
    m = task.model
    st = m.stages(knobs.rho, knobs.rho_s, knobs.power_w, knobs.freq_device_hz, knobs.freq_server_hz)
    if st.latency_s > task.latency_s * (1 + FEASIBILITY_RTOL) or st.energy_j > task.energy_j * (1 + FEASIBILITY_RTOL):
        logger.warning(
            "split %s plan exceeds its budget: %.9g s / %.9g s, %.9g J / %.9g J",
            m.split, st.latency_s, task.latency_s, st.energy_j, task.energy_j,
        )
    return SplitAnswer(
        status="optimal",
        split=m.split,
        solver=solver,
        scheme=scheme,
        objective="measured" if task.measured else "bound",
        rho_device=knobs.rho,
        rho_server=knobs.rho_s,
        power_w=knobs.power_w,
        freq_device_hz=knobs.freq_device_hz,
        freq_server_hz=knobs.freq_server_hz,
        latency_s=st.latency_s,
        energy_j=st.energy_j,
        stage=StageBreakdown(
            t_device=st.t_device, t_upload=st.t_upload, t_server=st.t_server,
            e_device=st.e_device, e_upload=st.e_upload, e_server=st.e_server, t_fixed=st.t_fixed,
        ),
        rate_bps=m.link.rate_bps(knobs.power_w) if m.has_upload else None,
        payload_bits=m.payload_bits,
        kept_params=m.kept_params(knobs.rho, knobs.rho_s),
        log2_distortion_bound=m.log2_distortion_bound(knobs.rho, knobs.rho_s),
        objective_value=task.objective(knobs.rho, knobs.rho_s),
        solve_time_s=solve_time_s,
    )


def _better(a: SplitAnswer, b: SplitAnswer) -> bool:
    """Lower objective; on a tie (relative 1e-9) lower energy, then lower latency."""
    va, vb = a.objective_value or 0.0, b.objective_value or 0.0
    if abs(va - vb) > 1e-9 * max(1.0, abs(va), abs(vb)):
        return va < vb
    return ((a.energy_j or 0.0), (a.latency_s or 0.0)) < ((b.energy_j or 0.0), (b.latency_s or 0.0))


class Planner:
    """Caches compiled problems so that a re-solve only sets parameter values."""

    def __init__(self, sca_max_iter: int = 150, sca_time_limit_s: float | None = None) -> None:
        self.sca_max_iter = sca_max_iter
        self.sca_time_limit_s = sca_time_limit_s  # per problem: every split's SCA shares it
        self._deadline: float | None = None
        self._exact: dict[Structure, ExactProgram] = {}
        self._sca: dict[Structure, ScaProgram] = {}
        self._fits: dict[tuple[tuple[float, float], ...], PiecewiseLinear] = {}

    def exact_program(self, task: SplitTask, mode: Mode = "quality") -> ExactProgram:
        key = Structure.of(task, mode)
        prog = self._exact.get(key)
        if prog is None:
            prog = self._exact[key] = ExactProgram(key)
            logger.debug("compiled exact program %s in %.1f ms", key, prog.build_time_s * 1e3)
        return prog

    def sca_program(self, task: SplitTask) -> ScaProgram:
        base = Structure.of(task)
        key = Structure(base.has_device, base.has_upload, base.has_server,
                        pieces_device=base.pieces_device, pieces_server=base.pieces_server)
        prog = self._sca.get(key)
        if prog is None:
            prog = self._sca[key] = ScaProgram(key)
        return prog

    def tasks(self, problem: Problem) -> list[SplitTask]:
        return tasks_for(problem, self._fits)

    # -- one split ---------------------------------------------------------------------------
    def min_budgets(self, task: SplitTask) -> tuple[float | None, float | None]:
        """(smallest feasible T0 at the given E0, smallest feasible E0 at the given T0); None when none exists."""
        out: list[float | None] = []
        for mode in ("min_latency", "min_energy"):
            prog = self.exact_program(task, mode)  # type: ignore[arg-type]
            raw = prog.solve(task)
            if raw.status == "optimal" and raw.value > 0.0:
                # Re-solve with the result as the unit so the minimum is found in well-scaled numbers.
                rescaled = task.with_budget(raw.value, task.energy_j) if mode == "min_latency" else \
                    task.with_budget(task.latency_s, raw.value)
                again = prog.solve(rescaled)
                if again.status == "optimal":
                    raw = again
            out.append(raw.value if raw.status == "optimal" else None)
        return out[0], out[1]

    def solve_exact(self, task: SplitTask, scheme: str = "joint") -> SplitAnswer:
        t0 = time.perf_counter()
        raw: RawSolution = self.exact_program(task).solve(task)
        if raw.status != "optimal":
            return self._not_solved(task, raw.status, raw.message, "exact", scheme, t0)
        knobs = recover_knobs(task, raw)
        if not on_steps(task, knobs):
            return self._best_on_steps(task, knobs, scheme, t0)
        return answer_from_knobs(task, knobs, solver="exact", scheme=scheme, solve_time_s=time.perf_counter() - t0)

    def _best_on_steps(self, task: SplitTask, continuous: Knobs, scheme: str, t0: float) -> SplitAnswer:
        """Re-solve with the clocks fixed on the neighbouring hardware steps; keep the best feasible plan."""
        best: SplitAnswer | None = None
        pending = step_tasks(task, continuous)
        while pending:
            fixed = pending.pop()
            raw = self.exact_program(fixed).solve(fixed)
            if raw.status != "optimal":
                continue
            knobs = recover_knobs(fixed, raw)
            if not on_steps(fixed, knobs):
                # A side idle at the continuous optimum may run once the other's clock is fixed: snap it too.
                pending.extend(t for t in step_tasks(fixed, knobs) if t != fixed)
                continue
            ans = answer_from_knobs(fixed, knobs, solver="exact", scheme=scheme, solve_time_s=0.0)
            if best is None or _better(ans, best):
                best = ans
        note = (f"clocks on hardware steps next to the continuous optimum "
                f"f={continuous.freq_device_hz:.6g} Hz, f~={continuous.freq_server_hz:.6g} Hz")
        if best is None:
            return self._not_solved(task, "infeasible", f"no feasible plan with {note}", "exact", scheme, t0)
        best.message = note
        best.solve_time_s = time.perf_counter() - t0
        return best

    def solve_sca(self, task: SplitTask, scheme: str = "joint", start: str = "phase1") -> SplitAnswer:
        t0 = time.perf_counter()
        natural = start == "natural"
        knobs0 = None if natural else phase1_start(task, self.exact_program(task))
        res: ScaResult = run_sca(task, self.sca_program(task), knobs0, natural=natural, max_iter=self.sca_max_iter,
                                 deadline=self._deadline)
        if res.knobs is None:
            status = res.status
            if natural and self.exact_program(task).solve(task).status == "infeasible":
                status = "infeasible"
            ans = self._not_solved(task, status, res.message, "sca", scheme, t0)
            ans.iterations, ans.objective_trace = res.iterations, res.trace
            return ans
        ans = answer_from_knobs(task, res.knobs, solver="sca", scheme=scheme, solve_time_s=time.perf_counter() - t0)
        ans.iterations, ans.objective_trace, ans.message = res.iterations, res.trace, res.message
        return ans

    def _not_solved(
        self, task: SplitTask, status: str, message: str | None, solver: str, scheme: str, t0: float
    ) -> SplitAnswer:
        min_t = min_e = None
        if status == "infeasible":
            min_t, min_e = self.min_budgets(task)
        return SplitAnswer(
            status="infeasible" if status == "infeasible" else "error",
            message=message,
            split=task.model.split,
            solver=solver,
            scheme=scheme,
            objective="measured" if task.measured else "bound",
            min_latency_s=min_t,
            min_energy_j=min_e,
            solve_time_s=time.perf_counter() - t0,
        )

    # -- a whole problem ---------------------------------------------------------------------
    def solve(
        self, problem: Problem, *, solver: str = "exact", scheme: str = "joint", sca_start: str = "phase1"
    ) -> Answer:
        """Solve every candidate split (with the scheme's pins) and return the best plan."""
        if solver not in SOLVERS:
            raise InvalidArgument(f"solver: unknown {solver!r}; choose one of {', '.join(SOLVERS)}")
        if sca_start not in ("phase1", "natural"):
            raise InvalidArgument(f"sca_start: unknown {sca_start!r}; choose phase1 or natural")
        t0 = time.perf_counter()
        self._deadline = t0 + self.sca_time_limit_s if self.sca_time_limit_s else None
        pinned = apply_scheme(problem, scheme)
        tasks = self.tasks(pinned)
        if solver == "exact":
            answer = search(tasks, lambda t: self.solve_exact(t, scheme))
        else:
            answer = search(tasks, lambda t: self.solve_sca(t, scheme, sca_start))
        if answer.per_split is not None:
            answer.solve_time_s = time.perf_counter() - t0
        return answer
