"""SCA is capped in iterations and in time per problem (the controller's --sca-max-iterations / --sca-time-limit-s)."""

from __future__ import annotations

import json

from controller.planner import Planner
from controller.problem import Problem
from tests.launch import ROOT

PAPER = json.loads((ROOT / "examples" / "paper.json").read_text())


def test_sca_iteration_cap():
    answer = Planner(sca_max_iter=2).solve(Problem.model_validate(PAPER), solver="sca")
    iterations = [a.iterations for a in answer.per_split or [answer] if a.iterations is not None]
    assert iterations and max(iterations) <= 2


def test_sca_time_cap_stops_every_split_after_the_deadline():
    answer = Planner(sca_time_limit_s=1e-9).solve(Problem.model_validate(PAPER), solver="sca")
    assert answer.status == "error"
    assert all("time limit" in (a.message or "") for a in answer.per_split or [answer])
