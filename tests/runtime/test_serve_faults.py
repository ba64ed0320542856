"""Faults of a served version: node exceptions, timeouts, big payloads, dead workers."""

from __future__ import annotations

import base64
import concurrent.futures
import os
import signal
import threading
import time

import pytest

from krtlab.runtime.client import CallError
from krtlab.runtime.serve import serve
from tests.runtime.test_serve_support import FAULTY_MAIN, alive, write_project

PY = "konstellation/kre-py:1.23.0"
TIMEOUT = 3.0


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("faulty")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KRTLAB_DATA_DIR", str(root / "data"))
        yield write_project(
            root / "project",
            nodes={
                "greeter": ("src/greeter/main.py", FAULTY_MAIN, PY),
                "sleeper": ("src/sleeper/main.py", FAULTY_MAIN, PY),
            },
            workflows={"greeting": ("PyGreet", ["greeter"]), "slow": ("GoGreet", ["sleeper"])},
        )


@pytest.fixture(scope="module")
def svc(project):
    with serve(project, port=0, request_timeout=TIMEOUT) as service:
        yield service


def _fault(svc, rpc: str, name: str) -> tuple[CallError, float]:
    t = time.monotonic()
    with pytest.raises(CallError) as info:
        svc.call(rpc, name=name)
    return info.value, time.monotonic() - t


def test_a_node_that_raises_fails_only_its_requests(svc):
    names = [f"bad-{i}" if i % 3 == 0 else f"ok-{i}" for i in range(90)]

    def one(name: str):
        try:
            return name, svc.call("PyGreet", name=name).greeting
        except CallError as exc:
            return name, exc

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = dict(pool.map(one, names))
    for name, result in results.items():
        if name.startswith("bad"):
            assert isinstance(result, CallError) and result.code == "INTERNAL"
            assert result.details == f"error in 'greeter': no greeting for {name}"
        else:
            assert result == f"Hello {name}!"


def test_request_timeout_is_honoured(svc):
    error, elapsed = _fault(svc, "GoGreet", "slow")
    assert error.code == "DEADLINE_EXCEEDED"
    assert "KRT_REQUEST_TIMEOUT" in error.details and "'slow'" in error.details
    assert TIMEOUT - 0.1 <= elapsed < TIMEOUT + 1.5


def test_payloads_over_1_mib_travel_gzipped_both_ways(svc):
    name = "x" * (3 * 1024 * 1024)
    assert svc.call("PyGreet", name=name).greeting == f"Hello {name}!"


def test_a_request_too_large_even_gzipped_is_refused(svc):
    name = base64.b64encode(os.urandom(1200 * 1024)).decode()
    error, elapsed = _fault(svc, "PyGreet", name)
    assert error.code == "RESOURCE_EXHAUSTED"
    assert "exceeds maximum size allowed of 1024.00 KB" in error.details
    assert elapsed < 2


def test_a_response_too_large_even_gzipped_is_the_nodes_error(svc):
    error, _ = _fault(svc, "PyGreet", "huge")
    assert error.code == "INTERNAL"
    assert error.details.startswith("error in 'greeter': compressed message exceeds")


def test_a_worker_killed_mid_load_is_restarted_and_in_flight_requests_fail_fast(svc):
    before = next(w for w in svc.status()["workers"] if w["node"] == "greeter")
    outcomes: list[tuple[str, object, float]] = []
    lock = threading.Lock()
    killed = threading.Event()
    count = [0]

    def one(i: int):
        t = time.monotonic()
        try:
            result: object = svc.call("PyGreet", name=f"nap{i}").greeting
        except CallError as exc:
            result = exc
        with lock:
            outcomes.append((f"nap{i}", result, time.monotonic() - t))
            count[0] += 1
            if count[0] == 60 and not killed.is_set():  # the worker has ~15 queued now
                os.kill(before["pid"], signal.SIGKILL)
                killed.set()

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(one, range(300)))
    assert killed.is_set()
    failed = [(n, r, d) for n, r, d in outcomes if isinstance(r, CallError)]
    assert failed, svc.logs()
    for _, error, elapsed in failed:
        assert error.code == "UNAVAILABLE"
        assert "worker for node 'greeter' exited (killed by SIGKILL)" in error.details
        assert elapsed < 1.0  # failed fast, long before the 3 s timeout
    answered = [(n, r) for n, r, _ in outcomes if not isinstance(r, CallError)]
    assert all(r == f"Hello {n}!" for n, r in answered)
    assert len(answered) + len(failed) == 300
    assert len(answered) > 200  # later requests waited for the restart and succeeded
    after = next(w for w in svc.status()["workers"] if w["node"] == "greeter")
    assert after["restarts"] == before["restarts"] + 1 and after["pid"] != before["pid"]
    assert after["last_exit"] == "killed by SIGKILL" and after["state"] == "ready"
    assert not alive(before["pid"])
    assert "worker for node 'greeter' exited (killed by SIGKILL)" in svc.logs("krtlab")
    assert svc.call("PyGreet", name="again").greeting == "Hello again!"


def test_a_crash_looping_worker_fails_requests_at_once_then_recovers(project):
    with serve(project, port=0, request_timeout=TIMEOUT) as service:
        for _ in range(3):  # each crash is waited out: the gate holds requests for the restart
            error, elapsed = _fault(service, "PyGreet", "die")
            assert error.code == "UNAVAILABLE" and "exit code 3" in error.details
        error, elapsed = _fault(service, "PyGreet", "anyone")  # still restarting
        assert error.code == "UNAVAILABLE" and "keeps crashing" in error.details
        assert elapsed < 0.5
        deadline = time.monotonic() + 10
        while True:  # the back-off ends, the worker comes back
            try:
                assert service.call("PyGreet", name="back").greeting == "Hello back!"
                break
            except CallError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        worker = next(w for w in service.status()["workers"] if w["node"] == "greeter")
        assert worker["restarts"] == 3


def test_a_dead_entrypoint_comes_back_on_the_same_port(svc):
    before = svc.status()["entrypoint"]
    os.kill(before["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 15
    while True:
        try:
            assert svc.call("PyGreet", name="again").greeting == "Hello again!"
            break
        except CallError as exc:
            assert exc.code == "UNAVAILABLE" and time.monotonic() < deadline
            time.sleep(0.1)
    after = svc.status()["entrypoint"]
    assert after["restarts"] == before["restarts"] + 1 and after["pid"] != before["pid"]
    assert "the entrypoint exited (killed by SIGKILL)" in svc.logs("krtlab")


def test_a_last_node_answering_the_wrong_type_gives_an_empty_response_as_kre(svc):
    assert svc.call("PyGreet", name="wrong-type").greeting == ""
    assert "the last node answered type.googleapis.com/entrypoint.Request" in svc.logs("entrypoint")
