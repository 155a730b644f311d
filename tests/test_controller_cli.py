"""The controller's command line: bad values and URLs are one line on stderr and exit code 2; --log-level works."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.launch import ROOT, child_env, start_controller


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller", *args], capture_output=True, text=True,
                          env=child_env(), cwd=ROOT, timeout=timeout)


@pytest.mark.parametrize("args", [
    ["pin", "split=abc"],
    ["pin", "rho_device=nan"],
    ["pin", "power_w=-1"],
    ["pin", "bogus=1"],
    ["pin", "split"],
    ["budget", "--latency-s", "inf", "--energy-j", "1"],
    ["budget", "--latency-s", "0.3", "--energy-j", "abc"],
    ["budget", "--latency-s", "-1", "--energy-j", "1"],
    ["plan", "--url", "htp:/bad"],
    ["plan", "--url", "http://"],
    ["plan", "--url", "not a url"],
    ["nodes", "--timeout", "nan"],
    ["plan", "--token-file", "/nonexistent/token"],
    ["serve", "--max-nodes", "1"],
    ["serve", "--log-level", "LOUD"],
], ids=lambda a: " ".join(a))
def test_bad_values_are_one_line_and_exit_2(args):
    r = _run(*args, "--url", "http://127.0.0.1:9") if args[0] == "pin" else _run(*args)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stdout == ""


def test_serve_log_level_info_prints_info_lines(tmp_path):
    proc = start_controller(["--log-level", "INFO"])
    proc.stop()
    assert " INFO " in proc.output(), proc.output()


def test_unreachable_controller_is_exit_3():
    r = _run("plan", "--url", "http://127.0.0.1:9", "--timeout", "5")
    assert r.returncode == 3 and "unreachable" in r.stderr
