"""Go nodes: krtlab runs their ``src`` as an executable with KRE's environment, as kre-go's
image does. No Go toolchain here, so the "binary" is a script speaking the same protocol."""

from __future__ import annotations

import json
import sys

import pytest

from krtlab.runtime.serve import serve
from tests.runtime.test_serve_support import write_project

FAKE_GO_NODE = f"""#!{sys.executable}
# Stands in for a kre-go binary: dumps its environment, then answers like kre.Start(...) does
# (plain subscription on KRT_NATS_INPUT, reply to envelope.reply, errors as 'error in ...').
import asyncio, json, os
import nats
from krtlab.runtime import envelope as env

with open(os.path.join(os.environ["KRT_BASE_PATH"], "..", "go-env.json"), "w") as f:
    json.dump({{k: v for k, v in os.environ.items() if k.startswith("KRT_")}}, f)


async def main():
    nc = await nats.connect("nats://" + os.environ["KRT_NATS_SERVER"])

    async def on_msg(msg):
        req = env.decode(msg.data)
        reply = msg.reply or req.reply
        name = req.payload.value[2:].decode()  # field 1, short string: tag + length
        out = env.new_envelope(tracking_id=req.tracking_id, reply=reply)
        out.payload.type_url = "type.googleapis.com/entrypoint.Response"
        greeting = ("Hello " + name + "!").encode()
        out.payload.value = b"\\x0a" + bytes([len(greeting)]) + greeting
        await nc.publish(reply, env.encode(out))

    await nc.subscribe(os.environ["KRT_NATS_INPUT"], cb=on_msg)
    await asyncio.Event().wait()


asyncio.run(main())
""".encode()

PY_MAIN = """from public_input_pb2 import Request, Response


async def handler(ctx, data):
    req = Request()
    data.Unpack(req)
    return Response(greeting=f"Hi {req.name}")
"""


def test_a_go_node_is_executed_with_kre_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KRTLAB_DATA_DIR", str(tmp_path / "data"))
    project = write_project(
        tmp_path / "project",
        version="greeter-v1",
        nodes={
            "py-greeter": ("src/py-greeter/main.py", PY_MAIN, "konstellation/kre-py:1.23.0"),
            "go-greeter": ("bin/go-greeter", FAKE_GO_NODE, "konstellation/kre-go:1.11.0"),
        },
        workflows={
            "py-greeting": ("PyGreet", ["py-greeter"]),
            "go-greeting": ("GoGreet", ["go-greeter"]),
        },
    )
    (project / "bin" / "go-greeter").chmod(0o644)  # krtlab sets the executable bit, as kre-go
    with serve(project, port=0) as svc:
        assert svc.call("GoGreet", name="John").greeting == "Hello John!"
        assert svc.call("PyGreet", name="John").greeting == "Hi John"
        env = json.loads((svc.run_dir / "go-env.json").read_text())
        go = next(w for w in svc.status()["workers"] if w["node"] == "go-greeter")
    assert env["KRT_HANDLER_PATH"] == "bin/go-greeter"
    assert env["KRT_NODE_NAME"] == "go-greeter" and env["KRT_NODE_ID"] == go["node_id"]
    assert env["KRT_NATS_INPUT"] == "greeter-v1-GoGreet-entrypoint"
    assert env["KRT_NATS_OUTPUT"] == ""
    assert env["KRT_WORKFLOW_NAME"] == "go-greeting" and len(env["KRT_WORKFLOW_ID"]) == 5
    assert env["KRT_VERSION"] == "greeter-v1" and len(env["KRT_VERSION_ID"]) == 24
    assert env["KRT_NATS_SERVER"].startswith("127.0.0.1:")
    for key in ("KRT_BASE_PATH", "KRT_NATS_MONGO_WRITER", "KRT_MONGO_URI", "KRT_INFLUX_URI"):
        assert env[key]


def test_a_go_node_that_cannot_start_stops_serve_with_its_log(tmp_path, monkeypatch):
    from krtlab.runtime.procs import ServeError

    monkeypatch.setenv("KRTLAB_DATA_DIR", str(tmp_path / "data"))
    project = write_project(
        tmp_path / "project",
        nodes={"go-greeter": ("bin/go-greeter", b"#!/bin/sh\necho 'no such runtime' >&2\nexit 4\n",
                              "konstellation/kre-go:1.11.0")},
        workflows={"go-greeting": ("GoGreet", ["go-greeter"])},
    )  # fmt: skip
    with pytest.raises(ServeError, match=r"(?s)exited \(exit code 4\) while starting.*no such"):
        serve(project, port=0)
