"""The controller: system model, P1 solvers and planning (no torch here)."""

from controller.planner import Planner
from controller.problem import Answer, Problem, SplitAnswer

__all__ = ["Answer", "Planner", "Problem", "SplitAnswer"]
