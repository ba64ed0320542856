"""`krtlab standin` gives the deploy commands a server: deploy, query and stop from a shell."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests.runtime.test_serve_support import alive, descendants

KRTLAB = [sys.executable, "-m", "krtlab.cli"]


def _read_exports(proc) -> dict[str, str]:
    env = {}
    for line in proc.stdout:
        if line.startswith("export "):
            key, _, value = line[len("export ") :].strip().partition("=")
            env[key] = value
        if line.startswith("Ctrl-C"):
            return env
    raise AssertionError(f"standin ended early: {proc.stderr.read()}")


def test_standin_serves_the_deploy_commands_until_interrupted(examples, tmp_path):
    proc = subprocess.Popen([*KRTLAB, "standin"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
    try:
        exports = _read_exports(proc)
        assert set(exports) == {"KAI_SERVER_URL", "KAI_API_TOKEN", "KUBECONFIG"}
        env = {**os.environ, **exports}

        def krtlab(*args):
            return subprocess.run([*KRTLAB, *args], env=env, capture_output=True, text=True,
                                  timeout=300)  # fmt: skip

        deployed = krtlab("deploy", str(examples / "greeter"), "--publish", "-m", "first")
        assert deployed.returncode == 0, deployed.stderr
        listed = krtlab("versions", "--json")
        [info] = json.loads(listed.stdout)
        assert (info["name"], info["status"]) == ("greeter-v1", "PUBLISHED")

        # the runtime's published entrypoint answers like KRE's, found with kubectl-less tools
        address = subprocess.run(
            [sys.executable, "-c", "from krtlab.deploy import KaiServer; "
             "print(KaiServer().entrypoint_address())"],
            env=env, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        called = krtlab("call", address, "PyGreet", '{"name": "Ada"}')
        assert called.returncode == 0, called.stderr
        assert json.loads(called.stdout) == {"greeting": "Hello Ada!"}

        children = descendants(proc.pid)  # nats-server, the worker, the entrypoint
        assert len(children) >= 3
        refused = krtlab("version", "stop", "greeter-v1", "-m", "too early")
        assert refused.returncode == 1
        assert "the version must be started before stopping" in refused.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip().endswith("stopped")
    # every process the stand-in started (nats-server, workers, entrypoint) is gone
    deadline = time.monotonic() + 10
    while {p for p in children if alive(p)} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not {p for p in children if alive(p)}
