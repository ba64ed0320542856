"""One broken node does not take a served version down: what can run is served, the rest
answers UNAVAILABLE naming the node and why; ``workflows=`` / ``--workflow`` serve a subset.
All through a real nats-server, worker processes and the gRPC entrypoint."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from krtlab.errors import SpecError, ValidationError
from krtlab.runtime.client import CallError
from krtlab.runtime.procs import ServeError
from krtlab.runtime.serve import serve
from tests.runtime.test_serve_support import FAULTY_MAIN, alive, descendants, write_project

PY = "konstellation/kre-py:1.23.0"
GO = "konstellation/kre-go:1.11.0"
PROTO = """syntax = "proto3";
package entrypoint;
message Request { string name = 1; }
message Response { string greeting = 1; }
service Entrypoint {
  rpc PyGreet (Request) returns (Response) {};
  rpc GoGreet (Request) returns (Response) {};
  rpc BoomGreet (Request) returns (Response) {};
}
"""
# Valid for every check, fails when kre-py imports it (as a model file that is not there would).
BOOM = """from public_input_pb2 import Request, Response

raise RuntimeError("boom at import")


async def handler(ctx, data):
    return Response()
"""
GO_DOWN = (
    "workflow 'go-greeting' is down: node 'go-greeter' did not start: "
    "src bin/go-greeter is not in the bundle"
)
BOOM_DOWN = (
    "workflow 'boom' is down: node 'boomer' did not start: it exited (exit code 1) while "
    "starting: error loading handler script src/boomer/main.py: boom at import"
)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("partial")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KRTLAB_DATA_DIR", str(root / "data"))
        path = write_project(
            root / "project",
            version="greeter-v1",
            proto=PROTO,
            nodes={
                "py-greeter": ("src/py-greeter/main.py", FAULTY_MAIN, PY),
                "go-greeter": ("bin/go-greeter", b"", GO),
                "boomer": ("src/boomer/main.py", BOOM, PY),
            },
            workflows={
                "py-greeting": ("PyGreet", ["py-greeter"]),
                "go-greeting": ("GoGreet", ["go-greeter"]),
                "boom": ("BoomGreet", ["boomer"]),
            },
        )
        (path / "bin" / "go-greeter").unlink()  # not built: KRE's greeter template as cloned
        yield path


@pytest.fixture(scope="module")
def svc(project):
    with serve(project, port=0, request_timeout=5) as service:
        yield service


def _error(svc, rpc: str) -> tuple[CallError, float]:
    t = time.monotonic()
    with pytest.raises(CallError) as info:
        svc.call(rpc, name="John")
    return info.value, time.monotonic() - t


def test_what_can_run_is_served(svc):
    assert svc.call("PyGreet", name="John").greeting == "Hello John!"
    error, elapsed = _error(svc, "GoGreet")
    assert (error.code, error.details) == ("UNAVAILABLE", GO_DOWN)
    assert elapsed < 1  # at once, not after the request timeout
    error, elapsed = _error(svc, "BoomGreet")
    assert (error.code, error.details) == ("UNAVAILABLE", BOOM_DOWN)
    assert elapsed < 1
    assert svc.call("PyGreet", name="Ann").greeting == "Hello Ann!"


def test_status_says_which_workers_are_down_and_why(svc):
    status = svc.status()
    workers = {w["node"]: w for w in status["workers"]}
    assert workers["py-greeter"]["state"] == "ready" and workers["py-greeter"]["reason"] == ""
    assert workers["go-greeter"]["state"] == "down" and workers["go-greeter"]["pid"] is None
    assert workers["go-greeter"]["reason"] == "src bin/go-greeter is not in the bundle"
    assert workers["boomer"]["state"] == "down" and workers["boomer"]["pid"] is None
    assert workers["boomer"]["last_exit"] == "exit code 1"
    assert workers["boomer"]["reason"].endswith("src/boomer/main.py: boom at import")
    assert status["workflows"] == {
        "py-greeting": {"rpc": "PyGreet", "state": "up", "reason": ""},
        "go-greeting": {"rpc": "GoGreet", "state": "down", "reason": GO_DOWN},
        "boom": {"rpc": "BoomGreet", "state": "down", "reason": BOOM_DOWN},
    }
    assert svc.down == {"go-greeting": GO_DOWN, "boom": BOOM_DOWN}
    assert "2 workflows down" in repr(svc)
    events = svc.logs("krtlab")
    assert "node 'go-greeter' (go-greeting) cannot start: src bin/go-greeter" in events
    assert "node 'boomer' (boom) did not start: it exited (exit code 1)" in events
    assert "Traceback" in svc.logs("boomer")  # the whole story is in its log


def test_a_node_that_did_not_start_is_not_restarted(svc):
    time.sleep(1.5)  # a crashed worker would be back by now
    boomer = next(w for w in svc.status()["workers"] if w["node"] == "boomer")
    assert boomer["state"] == "down" and boomer["restarts"] == 0 and boomer["pid"] is None
    assert svc.logs("boomer").count("error loading handler script") == 1


def test_a_worker_that_crashes_later_is_still_restarted(svc):
    with pytest.raises(CallError) as info:
        svc.call("PyGreet", name="die")
    assert info.value.code == "UNAVAILABLE"
    assert "worker for node 'py-greeter' exited (exit code 3)" in info.value.details
    assert svc.call("PyGreet", name="back").greeting == "Hello back!"
    greeter = next(w for w in svc.status()["workers"] if w["node"] == "py-greeter")
    assert greeter["restarts"] == 1 and greeter["state"] == "ready"


def test_workflows_serves_a_subset(project):
    before = descendants(os.getpid())
    with serve(project, port=0, workflows=["py-greeting"]) as svc:
        assert [w["node"] for w in svc.status()["workers"]] == ["py-greeter"]  # only its nodes
        assert svc.rpcs == ["PyGreet"] and svc.down == {}
        assert svc.call("PyGreet", name="John").greeting == "Hello John!"
        for rpc, workflow in (("GoGreet", "go-greeting"), ("BoomGreet", "boom")):
            error, _ = _error(svc, rpc)
            assert error.code == "UNIMPLEMENTED"
            assert error.details == (
                f"rpc {rpc} (workflow {workflow!r}) is not served here: this service serves "
                "only workflow 'py-greeting'"
            )
        assert svc.status()["workflows"]["boom"]["state"] == "not served"
        pids = [w["pid"] for w in svc.status()["workers"]] + [svc.status()["nats"]["pid"]]
    assert not [p for p in pids if alive(p)]
    assert descendants(os.getpid()) <= before  # no process left behind


def test_a_workflow_is_chosen_by_name_or_rpc(project):
    with pytest.raises(SpecError, match=r"no workflow 'py-greting'; did you mean 'py-greeting'"):
        serve(project, port=0, workflows=["py-greting"])
    with serve(project, port=0, workflows=["PyGreet", "boom"]) as svc:
        assert svc.rpcs == ["PyGreet", "BoomGreet"]
        assert svc.down == {"boom": BOOM_DOWN}
        assert svc.call("PyGreet", name="Kim").greeting == "Hello Kim!"


def test_when_nothing_can_run_serve_fails_with_the_reasons(project):
    before = descendants(os.getpid())
    with pytest.raises(ServeError) as info:
        serve(project, port=0, workflows=["boom"])
    text = str(info.value)
    first, second = text.splitlines()[:2]
    assert re.fullmatch(
        r"no workflow of greeter-v1 can run: boomer \(boom, \w+\) did not start", first
    )
    assert second == "  " + BOOM_DOWN
    assert "log of boomer (boom, " in text and "RuntimeError: boom at import" in text
    # only faults found before starting: the validation errors, as before
    with pytest.raises(ValidationError, match=r"src file 'bin/go-greeter' of node 'go-greeter'"):
        serve(project, port=0, workflows=["go-greeting"])
    time.sleep(0.2)
    assert not {p for p in descendants(os.getpid()) - before if alive(p)}


def test_krtlab_serve_prints_what_is_down_and_serves_a_subset(project, tmp_path):
    env = dict(os.environ, KRTLAB_DATA_DIR=str(tmp_path / "data"))
    argv = [sys.executable, "-m", "krtlab.cli", "serve", str(project), "--port", "0", "--quiet"]
    argv += ["--workflow", "py-greeting", "--workflow", "boom"]
    proc = subprocess.Popen(
        argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C"):
                break
        out = "\n".join(lines)
        assert lines[0].startswith("serving greeter-v1 on 127.0.0.1:"), out
        assert "  boom: boomer (" in out and ") DOWN: it exited (exit code 1) while starting" in out
        assert f"down: {BOOM_DOWN} (rpc BoomGreet answers UNAVAILABLE)" in lines
        assert "not served: workflow 'go-greeting' (rpc GoGreet answers UNIMPLEMENTED)" in lines
        assert "go-greeter" not in out.replace("'go-greeting'", "")  # not started, not listed
        address = lines[0].split()[3]
        assert f"try: krtlab call {address} PyGreet '{{}}'" in lines
        children = descendants(proc.pid)
        assert len(children) >= 3  # nats-server, the entrypoint, py-greeter

        def call(rpc: str) -> subprocess.CompletedProcess[str]:
            argv = [sys.executable, "-m", "krtlab.cli", "call", address, rpc, '{"name": "Jo"}']
            return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)

        ok = call("PyGreet")
        assert ok.returncode == 0 and json.loads(ok.stdout) == {"greeting": "Hello Jo!"}
        down = call("BoomGreet")
        assert down.returncode == 1 and f"UNAVAILABLE: {BOOM_DOWN}" in down.stderr
        unserved = call("GoGreet")
        assert unserved.returncode == 1
        assert "UNIMPLEMENTED: rpc GoGreet (workflow 'go-greeting') is not served" in (
            unserved.stderr
        )
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"{BOOM_DOWN}; rpc BoomGreet answers UNAVAILABLE" in err  # the warning
    deadline = time.monotonic() + 5
    while {p for p in children if alive(p)} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not {p for p in children if alive(p)}


def test_a_restarted_entrypoint_still_knows_what_is_down(project):
    with serve(project, port=0) as svc:
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
        assert svc.status()["entrypoint"]["restarts"] == before["restarts"] + 1
        error, elapsed = _error(svc, "GoGreet")
        assert (error.code, error.details) == ("UNAVAILABLE", GO_DOWN) and elapsed < 1
        error, _ = _error(svc, "BoomGreet")
        assert (error.code, error.details) == ("UNAVAILABLE", BOOM_DOWN)
