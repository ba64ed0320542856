"""``krtlab serve`` and ``krtlab call`` as a user runs them, and no process left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from krtlab.runtime.serve import serve
from tests.runtime.test_serve_support import PRICE, alive, descendants, expected_price

REQUEST = {"neighbourhood": "Brooklyn", "room_type": "Private room", "accommodates": 2}


@pytest.fixture
def env(tmp_path):
    out = dict(os.environ, KRTLAB_DATA_DIR=str(tmp_path / "data"))
    out.pop("OUTPUT_PRICE_CURRENCY", None)
    return out


_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _close_started():
    """The CLI processes a test started: killed if still running, their pipe closed."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()


def _start_cli(env, tmp_path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    with open(tmp_path / "serve.err", "w") as err:  # the child keeps its own handle
        proc = subprocess.Popen(
            [sys.executable, "-m", "krtlab.cli", "serve", str(PRICE), "--port", "0", *extra],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    _STARTED.append(proc)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("Ctrl-C"):
            break
    assert lines and lines[0].startswith("serving price-estimator-v1 on 127.0.0.1:"), (
        "".join(lines) + (tmp_path / "serve.err").read_text()
    )
    return proc, lines[0].split()[3]


def _wait_gone(pids: set[int], timeout: float = 5.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = {p for p in pids if alive(p)}
        if not left:
            return left
        time.sleep(0.05)
    return {p for p in pids if alive(p)}


def test_serve_then_call_then_ctrl_c_leaves_no_process(env, tmp_path):
    proc, address = _start_cli(env, tmp_path, "--set", "OUTPUT_PRICE_CURRENCY=GBP")
    children = descendants(proc.pid)
    assert len(children) >= 6  # nats-server, the entrypoint and 4 workers
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "krtlab.cli",
            "call",
            address,
            "MakePrediction",
            json.dumps(REQUEST),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer == {"price": expected_price(REQUEST, "GBP"), "currency": "GBP"}
    proc.send_signal(signal.SIGINT)
    assert proc.wait(15) == 0
    assert _wait_gone(children) == set()


def test_sigkill_of_krtlab_takes_every_child_with_it(env, tmp_path):
    proc, _ = _start_cli(env, tmp_path, "--quiet")
    children = descendants(proc.pid)
    assert len(children) >= 6
    proc.kill()
    proc.wait(5)
    assert _wait_gone(children) == set()


def test_leaving_the_with_block_stops_everything(env, monkeypatch):
    monkeypatch.setenv("KRTLAB_DATA_DIR", env["KRTLAB_DATA_DIR"])
    with serve(PRICE, port=0) as svc:
        children = descendants(os.getpid())
        status = svc.status()
        pids = {w["pid"] for w in status["workers"]}
        pids |= {status["nats"]["pid"], status["entrypoint"]["pid"]}
        assert pids <= children
        run_dir = svc.run_dir
        assert run_dir is not None and (run_dir / "krt-files" / "krt.yml").is_file()
    assert _wait_gone(pids, 1.0) == set()
    assert not run_dir.exists()
    assert svc.status()["state"] == "stopped"
    assert "listening to" in svc.logs("model")  # the logs outlive the run directory


def test_call_reports_errors_with_the_grpc_code(env, tmp_path):
    proc, address = _start_cli(env, tmp_path, "--quiet")
    try:
        out = subprocess.run(
            [sys.executable, "-m", "krtlab.cli", "call", address, "Nope", "{}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode != 0
        assert "Nope" in out.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
