"""Input validation names the field; the CLI prints valid JSON; pins are honoured."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from controller.cli import SUBCOMMANDS, main
from controller.planner import Planner
from controller.problem import Problem
from splitbed.errors import InvalidArgument

BASE: dict[str, Any] = json.loads(Path("examples/one_split.json").read_text())


def _bad(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    node = d
    for key in path[:-1]:
        node = node[key]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("budget", "latency_s"), -0.1, "latency_s"),
        (("budget", "energy_j"), 0.0, "energy_j"),
        (("link", "bandwidth_hz"), 0.0, "bandwidth_hz"),
        (("device", "f_max_hz"), ..., "f_max_hz"),
        (("server",), ..., "server"),
        (("link", "gain"), ..., "gain"),
        (("rho_min_device",), 1.5, "rho_min_device"),
        (("splits",), [], "splits"),
        (("link", "p_max_w"), float("nan"), "p_max_w"),
        (("typo_field",), 1, "typo_field"),
    ],
)
def test_invalid_input_names_the_field(path: tuple[str, ...], value: Any, field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Problem.model_validate(_bad(path, value))
    assert field in str(exc.value)


def test_pins_are_checked_and_honoured() -> None:
    with pytest.raises(ValidationError, match=r"pins\.power_w"):
        Problem.model_validate({**BASE, "pins": {"power_w": 5.0}})
    with pytest.raises(ValidationError, match=r"pins\.split"):
        Problem.model_validate({**BASE, "pins": {"split": 7}})
    pins = {"rho_device": 0.3, "power_w": 0.2, "freq_device_hz": 8e8, "freq_server_hz": 1e9}
    prob = Problem.model_validate({**BASE, "pins": pins})
    ans = Planner().solve(prob)
    assert ans.status == "optimal"
    assert ans.rho_device == 0.3 and ans.power_w == 0.2
    assert ans.freq_device_hz == 8e8 and ans.freq_server_hz == 1e9
    assert ans.latency_s is not None and ans.latency_s <= prob.budget.latency_s * (1 + 1e-6)
    free = Planner().solve(Problem.model_validate(BASE))
    assert ans.kept_params is not None and free.kept_params is not None
    assert ans.kept_params <= free.kept_params * (1 + 1e-6)


def test_link_gain_from_distance() -> None:
    d = _bad(("link", "gain"), ...)
    d["link"].update({"distance_m": 500.0, "k0_db": -30.0, "alpha": 2.8})
    assert Problem.model_validate(d).link.gain == pytest.approx(2.77e-11, rel=1e-3)


def test_unknown_scheme_and_solver_rejected() -> None:
    prob = Problem.model_validate(BASE)
    with pytest.raises(InvalidArgument, match="scheme"):
        Planner().solve(prob, scheme="nope")
    with pytest.raises(InvalidArgument, match="solver"):
        Planner().solve(prob, solver="nope")
    with pytest.raises(InvalidArgument, match="on-server"):
        Planner().solve(prob, scheme="on-server")  # split 0 is not among this file's splits


def test_cli_json_subprocess() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "controller", "solve", "--params", "examples/paper.json", "--json"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    answer = json.loads(out.stdout)
    assert answer["status"] == "optimal" and len(answer["per_split"]) == 13
    assert answer["split"] in range(13) and answer["stage"]["t_device"] >= 0.0


def test_cli_table_and_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solve", "--params", "examples/one_split.json", "--solver", "sca"]) == 0
    assert "rho" in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_bad(("budget", "latency_s"), -1)))
    assert main(["solve", "--params", str(bad)]) == 2
    assert "latency_s" in capsys.readouterr().err
    assert "solve" in SUBCOMMANDS
