"""Choosing every device's split: coordinate descent guided by Lagrangian bounds, or every combination.

A combination gives each device one of its candidate splits (an index into its
list). `score(combo)` is the optimum of the joint conic problem with those
splits fixed (smaller is better, `inf` when infeasible); it is memoised, so a
combination is solved at most once.

`bound(combo)` returns a `Table` from the prices of `combo`'s solution: G[k][j],
device k's least Lagrangian term with its j-th split, and a constant C such
that score(c) >= sum_k G[k][c_k] - C for EVERY combination c (weak duality).
It gives, without any solve:
- a lower bound on a one- or two-device move, so moves that cannot improve are
  never solved;
- a lower bound on every combination, sum_k min_j G[k][j] - C: when the best
  score found meets it, the plan is proven the best combination;
- the Lagrangian minimiser (each device at its own best j), a place to jump to.

Search: coordinate descent (best-improvement moves of one device at a time until
a sweep changes nothing); then, while the bound leaves a gap, try the jump and
then the two-device moves whose bound can improve, and descend again from any
improvement. Every accepted move improves the score, so the search terminates.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Combo = tuple[int, ...]
Table = tuple[list[list[float]], float]
Bound = Callable[[Combo], Table | None]
RTOL = 1e-7
PAIR_LIMIT = 32  # most two-device moves solved per round (best bound first), and at most sum(sizes)


class Memo:
    """Memoised `score` with a count of the distinct combinations solved."""

    def __init__(self, score: Callable[[Combo], float]) -> None:
        self._score = score
        self.cache: dict[Combo, float] = {}

    def __call__(self, combo: Combo) -> float:
        if combo not in self.cache:
            self.cache[combo] = self._score(combo)
        return self.cache[combo]

    @property
    def evaluated(self) -> int:
        return len(self.cache)


@dataclass(frozen=True)
class SearchResult:
    combo: Combo
    score: float
    sweeps: int
    lower: float | None = None  # a lower bound on every combination's score, if one is known
    rounds: int = 0  # jumps and two-device moves accepted


def better(new: float, old: float, rtol: float = RTOL) -> bool:
    """`new` improves on `old` by more than the solver's accuracy."""
    if math.isinf(old):
        return not math.isinf(new)
    return new < old - rtol * max(1.0, abs(old))


def lower_bound(table: Table) -> float:
    g, const = table
    return sum(min(row) for row in g) - const


def coordinate_descent(
    sizes: Sequence[int],
    start: Combo,
    score: Callable[[Combo], float],
    *,
    bound: Bound | None = None,
    stop_at: float | None = None,
    max_sweeps: int = 50,
) -> SearchResult:
    """Best-improvement moves of one device at a time until a sweep changes nothing.

    `stop_at`: return as soon as the score is at or below it (a phase-1 search needs only feasibility).
    """
    current, value = tuple(start), score(tuple(start))
    sweeps, calls = 0, [0]

    def counted(combo: Combo) -> float:
        calls[0] += 1
        return score(combo)

    table: Table | None = None
    priced_at = -1
    while sweeps < max_sweeps:
        sweeps += 1
        moved = False
        for k, size in enumerate(sizes):
            if stop_at is not None and value <= stop_at:
                return SearchResult(current, value, sweeps)
            # Weak duality makes a table valid at every combination, so after a move the old one still
            # bounds; it is re-priced (about max(sizes) solves) once as many solves were spent since.
            if bound is not None and not math.isinf(value) and (table is None or calls[0] - priced_at >= max(sizes)):
                table, priced_at = bound(current), calls[0]
            best = _best_move(current, value, k, size, counted, table)
            if best is not None:
                current, value, moved = best[0], best[1], True
        if not moved:
            break
    return SearchResult(current, value, sweeps)


def _best_move(
    current: Combo, value: float, k: int, size: int, score: Callable[[Combo], float], table: Table | None
) -> tuple[Combo, float] | None:
    """Device k's best other choice if it improves on `value`; choices ordered and cut by their bounds."""
    choices = [c for c in range(size) if c != current[k]]
    lows: list[float] | None = None
    if table is not None:
        g, const = table
        rest = sum(g[d][j] for d, j in enumerate(current) if d != k) - const
        lows = [rest + x for x in g[k]]
        choices.sort(key=lambda c: lows[c])  # type: ignore[index]
    best: tuple[Combo, float] | None = None
    best_value = value
    for choice in choices:
        if lows is not None and not better(lows[choice], best_value):
            break  # neither this choice nor any later one can improve enough
        combo = (*current[:k], choice, *current[k + 1:])
        v = score(combo)
        if better(v, best_value):
            best, best_value = (combo, v), v
    return best


def _pair_moves(current: Combo, value: float, table: Table, sizes: Sequence[int]) -> list[tuple[float, Combo]]:
    """Two-device moves whose bound can beat `value`, best bound first."""
    g, const = table
    base = sum(g[d][j] for d, j in enumerate(current)) - const
    out = []
    for k, m in itertools.combinations(range(len(sizes)), 2):
        drop = g[k][current[k]] + g[m][current[m]]
        for a in range(sizes[k]):
            for b in range(sizes[m]):
                low = base - drop + g[k][a] + g[m][b]
                if a != current[k] and b != current[m] and better(low, value):
                    combo = list(current)
                    combo[k], combo[m] = a, b
                    out.append((low, tuple(combo)))
    out.sort()
    return out


def search(
    sizes: Sequence[int], start: Combo, score: Callable[[Combo], float], bound: Bound, max_rounds: int = 20
) -> SearchResult:
    """Coordinate descent, then bound-guided jumps and two-device moves while a gap remains."""
    res = coordinate_descent(sizes, start, score, bound=bound)
    sweeps, rounds = res.sweeps, 0
    lower: float | None = None
    while rounds < max_rounds and not math.isinf(res.score):
        table = bound(res.combo)
        if table is None:
            break
        lower = lower_bound(table) if lower is None else max(lower, lower_bound(table))
        if not better(lower, res.score):
            break  # proven: no combination is better
        jump = tuple(min(range(n), key=row.__getitem__) for row, n in zip(table[0], sizes, strict=True))
        limit = min(PAIR_LIMIT, sum(sizes))
        tries = [jump] + [c for _, c in _pair_moves(res.combo, res.score, table, sizes)[:limit]]
        found = next((c for c in tries if better(score(c), res.score)), None)
        if found is None:
            break
        rounds += 1
        res = coordinate_descent(sizes, found, score, bound=bound)
        sweeps += res.sweeps
    return SearchResult(res.combo, res.score, sweeps, lower, rounds)


def exhaustive(sizes: Sequence[int], score: Callable[[Combo], float]) -> SearchResult:
    """Every combination; the best score (ties: the first in lexicographic order)."""
    best: Combo = tuple(0 for _ in sizes)
    best_value = math.inf
    for combo in itertools.product(*(range(n) for n in sizes)):
        v = score(combo)
        if better(v, best_value, rtol=0.0):
            best, best_value = combo, v
    return SearchResult(best, best_value, 1, best_value)


def combinations(sizes: Sequence[int]) -> int:
    return math.prod(sizes)
