"""Split search: solve every candidate split and keep the best plan."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from controller.problem import Answer, SplitAnswer, Status
from controller.system_model import SplitTask


def rank_key(answer: SplitAnswer) -> tuple[float, float]:
    """Smaller is better: the minimised objective, then latency as a tie-break."""
    value = answer.objective_value if answer.objective_value is not None else float("inf")
    return value, answer.latency_s if answer.latency_s is not None else float("inf")


def best_answer(answers: Sequence[SplitAnswer]) -> Answer:
    """The best optimal split, or (none feasible) an infeasible answer with the loosest-needed budgets."""
    feasible = [a for a in answers if a.status == "optimal"]
    per_split = list(answers) if len(answers) > 1 else None
    if feasible:
        best = min(feasible, key=rank_key)
        return Answer(**best.model_dump(), per_split=per_split)
    first = answers[0]
    status: Status = "infeasible" if all(a.status == "infeasible" for a in answers) else "error"
    lat = [a.min_latency_s for a in answers if a.min_latency_s is not None]
    ene = [a.min_energy_j for a in answers if a.min_energy_j is not None]
    messages = sorted({a.message for a in answers if a.message})
    return Answer(
        status=status,
        message="; ".join(messages) or None,
        split=first.split if len(answers) == 1 else None,
        solver=first.solver,
        scheme=first.scheme,
        objective=first.objective,
        min_latency_s=min(lat) if lat else None,
        min_energy_j=min(ene) if ene else None,
        solve_time_s=sum(a.solve_time_s for a in answers),
        per_split=per_split,
    )


def search(tasks: Sequence[SplitTask], solve_one: Callable[[SplitTask], SplitAnswer]) -> Answer:
    """Solve each split's task and return the best, with every split's result in `per_split`."""
    return best_answer([solve_one(t) for t in tasks])
