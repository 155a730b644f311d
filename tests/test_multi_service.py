"""The multi-device JSON contract end to end: `controller solve --params` and a real `controller serve`."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.launch import ROOT, start_controller

MULTI: dict[str, Any] = json.loads((ROOT / "examples" / "multi_device.json").read_text())
ONE: dict[str, Any] = json.loads((ROOT / "examples" / "one_split.json").read_text())
DEVICE_KEYS = ("split", "rho_device", "rho_server", "power_w", "freq_device_hz", "freq_server_hz", "latency_s",
               "energy_j", "log2_distortion_bound", "stage", "server_load", "uplink_load")


def _check_answer(answer: dict[str, Any], problem: dict[str, Any]) -> None:
    assert answer["status"] == "optimal", answer.get("message")
    assert [d["id"] for d in answer["devices"]] == [d["id"] for d in problem["devices"]]
    for dev, got in zip(problem["devices"], answer["devices"], strict=True):
        assert got["status"] == "optimal"
        for key in DEVICE_KEYS:
            assert got[key] is not None, (dev["id"], key)
        assert got["latency_s"] <= dev["budget"]["latency_s"] * (1 + 1e-6)
        assert got["energy_j"] <= dev["budget"]["energy_j"] * (1 + 1e-6)
    u_max = problem.get("u_max", 0.9)
    assert 0.0 <= answer["server_utilisation"] <= u_max * (1 + 1e-6)
    assert 0.0 <= answer["uplink_utilisation"] <= u_max * (1 + 1e-6)
    assert answer["server_utilisation"] == pytest.approx(sum(d["server_load"] for d in answer["devices"]))


def _cli(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller", "solve", "--params", str(path), *extra],
                          capture_output=True, text=True, timeout=180, cwd=ROOT)


def test_cli_solves_the_example_as_json() -> None:
    out = _cli(ROOT / "examples" / "multi_device.json", "--json")
    assert out.returncode == 0, out.stderr
    _check_answer(json.loads(out.stdout), MULTI)


def test_cli_table_bad_input_and_infeasible(tmp_path: Path) -> None:
    out = _cli(ROOT / "examples" / "multi_device.json")
    assert out.returncode == 0 and "server utilisation" in out.stdout and "jetson-orin-nano" in out.stdout
    bad = copy.deepcopy(MULTI)
    bad["devices"][0]["budget"]["latency_s"] = -1
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    out = _cli(tmp_path / "bad.json")
    assert out.returncode == 2 and "devices.0.budget.latency_s" in out.stderr
    tight = copy.deepcopy(MULTI)
    tight["devices"][3].update(budget={"latency_s": 1e-3, "energy_j": 1.0}, rho_min_device=0.5, rho_min_server=0.5)
    (tmp_path / "tight.json").write_text(json.dumps(tight))
    out = _cli(tmp_path / "tight.json", "--json")
    answer = json.loads(out.stdout)
    assert out.returncode == 1 and answer["status"] == "infeasible" and "paper-device-far" in answer["message"]
    assert _cli(ROOT / "examples" / "multi_device.json", "--solver", "sca").returncode == 2


@pytest.fixture(scope="module")
def controller():
    proc = start_controller()
    yield proc
    assert proc.stop() == 0, proc.output()


def test_rest_solves_the_example(controller) -> None:
    r = httpx.post(f"{controller.rest_url}/v1/solve", json=MULTI, timeout=120)
    assert r.status_code == 200, r.text
    _check_answer(r.json(), MULTI)
    fair = httpx.post(f"{controller.rest_url}/v1/solve", json=dict(MULTI, fairness="max-min"), timeout=120).json()
    assert fair["status"] == "optimal" and fair["fairness"] == "max-min"


def test_rest_one_device_form_unchanged(controller) -> None:
    r = httpx.post(f"{controller.rest_url}/v1/solve", json=ONE, timeout=60)
    assert r.status_code == 200 and r.json()["status"] == "optimal" and "devices" not in r.json()
    bad = copy.deepcopy(ONE)
    bad["budget"]["latency_s"] = -1
    r = httpx.post(f"{controller.rest_url}/v1/solve", json=bad, timeout=60)
    assert r.status_code == 422 and any(e["loc"][-1] == "latency_s" for e in r.json()["detail"])


@pytest.mark.parametrize(
    ("mutate", "loc"),
    [
        (lambda p: p["devices"][1]["budget"].update(energy_j=0), ["body", "devices", 1, "budget", "energy_j"]),
        (lambda p: p["devices"][0].pop("p_max_w"), ["body", "devices", 0, "p_max_w"]),
        (lambda p: p.update(fairness="nash"), ["body", "fairness"]),
    ],
)
def test_rest_rejects_bad_multi_input(controller, mutate, loc) -> None:
    bad = copy.deepcopy(MULTI)
    mutate(bad)
    r = httpx.post(f"{controller.rest_url}/v1/solve", json=bad, timeout=60)
    assert r.status_code == 422
    assert loc in [e["loc"] for e in r.json()["detail"]], r.json()


def test_rest_query_and_size_limits(controller) -> None:
    r = httpx.post(f"{controller.rest_url}/v1/solve", params={"solver": "sca"}, json=MULTI, timeout=60)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "solver"]
    r = httpx.post(f"{controller.rest_url}/v1/solve", content=b'{"devices": [' + b" " * (9 << 20) + b"]}",
                   headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == 413
    r = httpx.post(f"{controller.rest_url}/v1/solve", json={"devices": []}, timeout=60)
    assert r.status_code == 422
    assert httpx.get(f"{controller.rest_url}/healthz", timeout=10).text.strip('"') == "ok"
