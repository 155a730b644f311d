"""Plans for K devices sharing one edge server: split search over joint conic solves.

1. Each device alone (its own budget, nothing shared) is solved per split with
   the one-device exact program: the splits feasible alone are its candidates,
   and its best split alone is where the search starts.
2. With every split fixed the group is one conic problem (`JointProgram`).
   A start that overloads the server or the uplink is first moved, by the same
   coordinate descent on the least achievable max(server, uplink) utilisation,
   to a combination within u_max (phase 1).
3. Coordinate descent with Lagrangian bounds (or, on request, every
   combination) over the devices' splits on the joint optimum
   (`controller.split_search`, whose docstring has the method and its bound).
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from controller.cones import distortion_scale
from controller.exact import Structure, recover_knobs
from controller.joint import FAIR_EPS, JointMode, JointProgram, JointRaw, JointStructure, pricing_mode
from controller.multi_answer import device_answers, infeasible_answer
from controller.multi_problem import DeviceSpec, MultiAnswer, MultiProblem, SearchReport
from controller.planner import Planner, answer_from_knobs
from controller.problem import Answer, Problem
from controller.split_search import (
    Combo,
    Memo,
    SearchResult,
    Table,
    better,
    combinations,
    coordinate_descent,
    exhaustive,
    search,
)
from controller.system_model import PiecewiseLinear, SplitTask

logger = logging.getLogger(__name__)
# Compiled joint programs kept per planner (a group needs one or two at a time).
MAX_PROGRAMS = 16


@dataclass(frozen=True)
class DeviceCase:
    """One device: its spec and one-device problem, and the tasks of the splits feasible alone."""

    spec: DeviceSpec
    problem: Problem
    candidates: tuple[SplitTask, ...]
    structure: Structure
    start: int  # index of its best split alone among the candidates
    alone: Answer | None = None  # its full one-device answer, only worked out when it is infeasible alone

    @property
    def best_split(self) -> int | None:
        return self.candidates[self.start].model.split if self.candidates else None


def _pad(fit: PiecewiseLinear | None, pieces: int) -> PiecewiseLinear | None:
    """Repeat the last piece (or use the zero function) so every split has `pieces` pieces."""
    if pieces == 0:
        return None
    if fit is None:
        return PiecewiseLinear((0.0,) * pieces, (0.0,) * pieces)
    extra = pieces - fit.pieces
    return PiecewiseLinear(fit.intercepts + fit.intercepts[-1:] * extra, fit.slopes + fit.slopes[-1:] * extra)


def uniform_structure(tasks: Sequence[SplitTask]) -> tuple[Structure, list[SplitTask]]:
    """One structure for all of a device's splits (every stage present) and the tasks padded to it."""
    t = tasks[0]
    m = t.model
    pd = max((x.fit_device.pieces for x in tasks if x.fit_device is not None), default=0)
    ps = max((x.fit_server.pieces for x in tasks if x.fit_server is not None), default=0)
    st = Structure(
        True, True, True,
        pin_f_device=t.freq_device_hz is not None,
        pin_f_server=t.freq_server_hz is not None,
        pin_power=t.power_w is not None,
        fmin_device=t.freq_device_hz is None and m.device.f_min_hz > 0,
        fmin_server=t.freq_server_hz is None and m.server.f_min_hz > 0,
        pieces_device=pd,
        pieces_server=ps,
    )
    return st, [replace(x, fit_device=_pad(x.fit_device, pd), fit_server=_pad(x.fit_server, ps)) for x in tasks]


def joint_objective(
    tasks: Sequence[SplitTask], raw: JointRaw, weights: Sequence[float], fairness: str
) -> tuple[float, float]:
    """(score to minimise, reported objective) at a joint solution, from the plain formulas.

    sum: sum_k w_k log2 D^_k (or sum_k w_k D_k measured), both ways. max-min: the score adds
    FAIR_EPS/K of the sum to the worst device; the reported value is the smallest kept fraction
    (bound) or the largest fitted distortion (measured).
    """
    vals = [t.objective(r.rho, r.rho_s) for t, r in zip(tasks, raw.devices, strict=True)]
    k = len(tasks)
    if fairness == "sum":
        total = sum(w * v for w, v in zip(weights, vals, strict=True))
        return total, total
    if tasks[0].measured:
        return max(vals) + FAIR_EPS / k * sum(vals), max(vals)
    kept = [t.model.kept_params(r.rho, r.rho_s) / (t.model.device_params + t.model.server_params)
            for t, r in zip(tasks, raw.devices, strict=True)]
    return -(min(kept) + FAIR_EPS / k * sum(kept)), min(kept)


class MultiPlanner:
    """Caches compiled joint programs (one per structure, the most recently used) beside a one-device `Planner`."""

    def __init__(self, planner: Planner | None = None, max_programs: int = MAX_PROGRAMS) -> None:
        self.planner = planner or Planner()
        self.max_programs = max_programs
        self._joint: OrderedDict[JointStructure, JointProgram] = OrderedDict()

    def program(self, structure: JointStructure) -> JointProgram:
        prog = self._joint.get(structure)
        if prog is None:
            prog = self._joint[structure] = JointProgram(structure)
            logger.debug("compiled joint program of %d devices", len(structure.devices))
            while len(self._joint) > self.max_programs:
                self._joint.popitem(last=False)  # a long-lived server meets ever new groups: bounded memory
        else:
            self._joint.move_to_end(structure)
        return prog

    @property
    def compiled(self) -> int:
        """Compiled joint programs held now (at most `max_programs`)."""
        return len(self._joint)

    def device_case(self, spec: DeviceSpec, problem: Problem) -> DeviceCase:
        """The device alone: its splits feasible alone (the search's candidates) and its best one (the start)."""
        tasks = self.planner.tasks(problem)
        st, padded = uniform_structure(tasks)
        cands: list[SplitTask] = []
        ranks: list[tuple[float, float]] = []
        for task, pad in zip(tasks, padded, strict=True):
            raw = self.planner.exact_program(task).solve(task)
            if raw.status == "optimal":
                cands.append(pad)
                ranks.append((task.objective(raw.rho, raw.rho_s), raw.t_device + raw.t_upload + raw.t_server))
        start = min(range(len(cands)), key=ranks.__getitem__) if cands else 0
        # Why a device is infeasible alone (the smallest budgets it would need) costs more solves: only then.
        alone = None if cands else self.planner.solve(problem)
        return DeviceCase(spec, problem, tuple(cands), st, start, alone)

    def solve(self, mp: MultiProblem) -> MultiAnswer:
        t0 = time.perf_counter()
        cases = [self.device_case(spec, prob) for spec, prob in zip(mp.devices, mp.device_problems(), strict=True)]
        if any(not c.candidates for c in cases):
            return infeasible_answer(mp, cases, None, time.perf_counter() - t0)
        run = GroupSearch(self, mp, cases)
        res, report = run.search()
        if math.isinf(res.score):
            return infeasible_answer(mp, cases, run.least_load(), time.perf_counter() - t0, report)
        raw = run.raws[res.combo]
        tasks = [c.candidates[i] for c, i in zip(cases, res.combo, strict=True)]
        answers = [
            answer_from_knobs(t, recover_knobs(t, r), solver="exact", scheme="joint", solve_time_s=raw.solve_time_s)
            for t, r in zip(tasks, raw.devices, strict=True)
        ]
        value = joint_objective(tasks, raw, [c.spec.weight for c in cases], mp.fairness)[1]
        return device_answers(mp, cases, answers, value, report, time.perf_counter() - t0)


class GroupSearch:
    """One group's split search: memoised joint solves, phase 1 on the load, Lagrangian bounds."""

    def __init__(self, planner: MultiPlanner, mp: MultiProblem, cases: Sequence[DeviceCase]) -> None:
        self.mp, self.cases = mp, cases
        self.sizes = [len(c.candidates) for c in cases]
        self.start: Combo = tuple(c.start for c in cases)
        self.rates = [c.spec.rate for c in cases]
        self.weights = [c.spec.weight for c in cases]
        # One unit for measured distortions across every combination, so their optima compare.
        self.dscale = max(distortion_scale(t) for c in cases for t in c.candidates)
        self.raws: dict[Combo, JointRaw] = {}
        self.load_raws: dict[Combo, JointRaw] = {}
        self.planner = planner
        self.quality = Memo(self._scorer("quality", self.raws))
        self.load = Memo(self._scorer("load", self.load_raws))
        self.pricing: dict[Combo, list[list[float]] | None] = {}
        self.load_result: SearchResult | None = None

    def _structure(self, mode: JointMode) -> JointStructure:
        return JointStructure(tuple(c.structure for c in self.cases), self.mp.fairness, mode)

    def tasks(self, combo: Combo) -> list[SplitTask]:
        return [c.candidates[i] for c, i in zip(self.cases, combo, strict=True)]

    def _scorer(self, mode: JointMode, raws: dict[Combo, JointRaw]) -> Callable[[Combo], float]:
        def score(combo: Combo) -> float:
            prog = self.planner.program(self._structure(mode))  # compiled on first use, then cached
            raw = raws[combo] = prog.solve(self.tasks(combo), self.rates, self.weights, self.mp.u_max, self.dscale)
            if raw.status == "error":
                logger.warning("joint solve of splits %s failed: %s", combo, raw.message)
            return raw.value if raw.status == "optimal" else math.inf

        return score

    def terms(self, combo: Combo) -> list[list[float]] | None:
        """G[d][j]: device d's least Lagrangian term with its j-th candidate, at `combo`'s prices."""
        if combo not in self.pricing:
            at = self.raws.get(combo)
            table: list[list[float]] | None = None
            if at is not None and at.status == "optimal":
                cols = []
                priced = self.planner.program(self._structure(pricing_mode(self.mp.fairness)))
                for j in range(max(self.sizes)):
                    col = priced.priced_terms(self.tasks(tuple(min(j, n - 1) for n in self.sizes)),
                                              self.rates, at, self.dscale)
                    if col is None:
                        break
                    cols.append(col)
                else:
                    table = [[cols[j][d] for j in range(n)] for d, n in enumerate(self.sizes)]
            self.pricing[combo] = table
        return self.pricing[combo]

    def bound(self, combo: Combo) -> Table | None:
        """The Lagrangian table at `combo`'s prices: score(c) >= sum_k G[k][c_k] - u_max (mu_S + mu_U)."""
        g = self.terms(combo)
        if g is None:
            return None
        return g, self.mp.u_max * sum(self.raws[combo].prices)

    def search(self) -> tuple[SearchResult, SearchReport]:
        """Phase 1 (if the start overloads a shared resource), then the split search on the joint optimum."""
        start = self.start
        if self.mp.split_search == "exhaustive":
            res = exhaustive(self.sizes, self.quality)
            method = "exhaustive"
        else:
            res, start = self._descend(start)
            method = "coordinate-descent+lagrangian-bounds"
        splits = [c.candidates[i].model.split for c, i in zip(self.cases, start, strict=True)]
        report = SearchReport(
            method=method, combinations=combinations(self.sizes), evaluated=self.quality.evaluated,
            phase1_evaluated=self.load.evaluated, priced=len(self.pricing), sweeps=res.sweeps, rounds=res.rounds,
            start=splits, score=None if math.isinf(res.score) else res.score, dual_bound=res.lower,
        )
        return res, report

    def _descend(self, start: Combo) -> tuple[SearchResult, Combo]:
        """The bounded descent; from an overloaded start, from two phase-1 points: the first combination
        within u_max on the way down the load, and the least-loaded one (the first lies in whichever basin
        the overload pushed it to, the second far from it). The better result wins."""
        if not math.isinf(self.quality(start)):
            return search(self.sizes, start, self.quality, self.bound), start
        first = coordinate_descent(self.sizes, start, self.load, stop_at=self.mp.u_max)
        self.load_result = least = coordinate_descent(self.sizes, first.combo, self.load)
        best, best_start = search(self.sizes, first.combo, self.quality, self.bound), first.combo
        if least.combo != first.combo and not math.isinf(self.quality(least.combo)):
            other = search(self.sizes, least.combo, self.quality, self.bound)
            if better(other.score, best.score):
                lower = max((x for x in (best.lower, other.lower) if x is not None), default=None)
                best, best_start = replace(other, lower=lower, sweeps=best.sweeps + other.sweeps), least.combo
        return best, best_start

    def least_load(self) -> JointRaw | None:
        """The least-loaded combination found, to say by how much the group is over u_max."""
        if self.load_result is None:
            self.load_result = (exhaustive(self.sizes, self.load) if self.mp.split_search == "exhaustive"
                                else coordinate_descent(self.sizes, self.start, self.load))
        raw = self.load_raws.get(self.load_result.combo)
        return raw if raw is not None and raw.status == "optimal" else None
