"""``python -m krtlab.runtime.worker`` on a real nats-server, driven by nats-py as KRE's entrypoint
and a neighbouring node would drive kre-py: the observed runner's behaviour, step by step."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nats
import pytest
from google.protobuf import wrappers_pb2

from krtlab.runtime import envelope as env
from krtlab.runtime.natsserver import NatsServer

HANDLER = """
import asyncio
from google.protobuf.wrappers_pb2 import StringValue


def init(ctx):
    ctx.logger.info("init done")
    ctx.set("prefix", ">")


async def handler(ctx, data):
    req = StringValue()
    data.Unpack(req)
    if req.value == "boom":
        raise ValueError("boom!")
    if req.value == "early":
        await ctx.reply(StringValue(value="early answer"))
        return StringValue(value="late answer")
    return StringValue(value=ctx.get("prefix") + req.value.upper())
"""
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?"


def _env(base: Path, server: NatsServer, node: str, inp: str, out: str) -> dict[str, str]:
    return dict(
        os.environ,
        KRT_VERSION_ID="0123456789abcdef01234567",
        KRT_VERSION="test-v1",
        KRT_NODE_NAME=node,
        KRT_NODE_ID=node[:5],
        KRT_WORKFLOW_NAME="wf",
        KRT_WORKFLOW_ID="wfid",
        KRT_NATS_SERVER=server.url,
        KRT_NATS_INPUT=inp,
        KRT_NATS_OUTPUT=out,
        KRT_NATS_MONGO_WRITER="mongo_writer",
        KRT_BASE_PATH=str(base),
        KRT_HANDLER_PATH="src/node/main.py",
        KRT_MONGO_URI="mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500",
        KRT_INFLUX_URI="http://127.0.0.1:1",
        KRTLAB_STORE=str(base / "store.sqlite"),
        KRTLAB_READY_SUBJECT="ready",
    )


def _start(env_: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as f:
        return subprocess.Popen(
            [sys.executable, "-m", "krtlab.runtime.worker"], env=env_, stdout=f, stderr=f
        )


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    """nats-server, a last node ("last", input "in-last") and a middle node ("middle", input
    "in-middle", output "next"), both running HANDLER."""
    base = tmp_path_factory.mktemp("krt")
    (base / "src" / "node").mkdir(parents=True)
    (base / "src" / "node" / "main.py").write_text(HANDLER)
    server = NatsServer(base / "nats.log")
    server.start()
    procs = {
        "last": _start(_env(base, server, "last", "in-last", ""), base / "last.log"),
        "middle": _start(_env(base, server, "middle", "in-middle", "next"), base / "middle.log"),
    }

    try:
        deadline = time.monotonic() + 30
        while server.subscribers("in-last") + server.subscribers("in-middle") < 2:
            assert time.monotonic() < deadline, (base / "last.log").read_text()
            time.sleep(0.05)
        time.sleep(0.3)  # init runs right after the SUB
        yield server, procs, base
    finally:
        for p in procs.values():
            p.terminate()
            p.wait(5)
        server.stop()


def _request(value: str, *, reply: str = "", tracking_id: str = "tid-1") -> bytes:
    msg = env.new_envelope(tracking_id=tracking_id, reply=reply)
    msg.payload.Pack(wrappers_pb2.StringValue(value=value))
    return env.encode(msg)


def _value(msg) -> str:
    out = wrappers_pb2.StringValue()
    assert msg.payload.Unpack(out)
    return out.value


async def _client(server: NatsServer):
    return await nats.connect(f"nats://{server.url}")


def test_missing_env_var_exits_1_with_kre_message(tmp_path):
    env_ = {k: v for k, v in os.environ.items() if not k.startswith("KRT_")}
    env_.update(KRT_VERSION_ID="x", KRT_VERSION="v", KRT_NODE_NAME="n", KRT_NATS_SERVER="x:1")
    env_.update(KRT_NATS_INPUT="in")  # KRT_NATS_OUTPUT missing, as KRE never leaves it
    proc = subprocess.run(
        [sys.executable, "-m", "krtlab.runtime.worker"], env=env_, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "error reading config: the 'KRT_NATS_OUTPUT' env var is missing" in proc.stderr


def test_subscribes_in_queue_group_and_logs_like_kre_py(runtime):
    server, _, base = runtime
    url = f"http://{server.host}:{server.monitor_port}/connz?subs=detail"
    with urllib.request.urlopen(url, timeout=5) as resp:
        conns = json.load(resp)["connections"]
    subs = {
        s["subject"]: s.get("qgroup")
        for c in conns
        for s in c.get("subscriptions_list_detail") or ()
    }
    assert subs["in-last"] == "queue_in-last"
    assert subs["in-middle"] == "queue_in-middle"
    names = {c.get("name") for c in conns}
    assert {"test-v1-last", "test-v1-middle"} <= names  # f"{KRT_VERSION}-{KRT_NODE_NAME}"
    log = (base / "last.log").read_text()
    assert re.search(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO listening to 'in-last' subject with "
        r"queue 'queue_in-last'",
        log,
    )
    assert "INFO init done" in log


def test_last_node_answers_the_request_inbox(runtime):
    server, _, _ = runtime

    async def go():
        nc = await _client(server)
        msg = await nc.request("in-last", _request("john"), timeout=5)
        await nc.close()
        return msg

    msg = asyncio.run(go())
    out = env.decode(msg.data)
    assert _value(out) == ">JOHN"
    assert out.tracking_id == "tid-1"
    assert out.reply == msg.subject  # the NATS reply subject was copied into the envelope
    assert out.error == "" and not out.replied
    [entry] = out.tracking
    assert entry.node_name == "last"
    assert re.fullmatch(ISO, entry.start) and re.fullmatch(ISO, entry.end)
    assert entry.start <= entry.end


def test_middle_node_publishes_plainly_to_its_output(runtime):
    server, _, _ = runtime

    async def go():
        nc = await _client(server)
        sub = await nc.subscribe("next")
        inbox = nc.new_inbox()
        await nc.publish("in-middle", _request("x", tracking_id="t2"), reply=inbox)
        msg = await sub.next_msg(timeout=5)
        await nc.close()
        return msg, inbox

    msg, inbox = asyncio.run(go())
    assert msg.reply == ""  # a plain PUB
    out = env.decode(msg.data)
    assert out.reply == inbox and out.tracking_id == "t2"
    assert _value(out) == ">X" and [t.node_name for t in out.tracking] == ["middle"]


def test_envelope_reply_is_used_when_the_message_has_none(runtime):
    server, _, _ = runtime

    async def go():
        nc = await _client(server)
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish("in-last", _request("y", reply=inbox))  # no NATS reply subject
        msg = await sub.next_msg(timeout=5)
        await nc.close()
        return msg

    assert _value(env.decode(asyncio.run(go()).data)) == ">Y"


def test_errors_carry_only_error_and_go_straight_to_the_reply(runtime):
    server, _, _ = runtime

    async def go():
        nc = await _client(server)
        nxt = await nc.subscribe("next")
        last = await nc.request("in-last", _request("boom"), timeout=5)
        middle = await nc.request("in-middle", _request("boom"), timeout=5)
        with pytest.raises(nats.errors.TimeoutError):
            await nxt.next_msg(timeout=0.3)  # the chain is skipped
        await nc.close()
        return last, middle

    for msg, node in zip(asyncio.run(go()), ("last", "middle"), strict=True):
        out = env.decode(msg.data)
        assert [f.name for f, _ in out.ListFields()] == ["error"]
        assert out.error == f"error in '{node}': boom!"


def test_undecodable_input_is_dropped_silently(runtime):
    server, procs, _ = runtime

    async def go():
        nc = await _client(server)
        with pytest.raises(nats.errors.TimeoutError):
            await nc.request("in-last", b"\x0a\xff\xff\xff not an envelope", timeout=0.5)
        ok = await nc.request("in-last", _request("still"), timeout=5)
        await nc.close()
        return ok

    assert _value(env.decode(asyncio.run(go()).data)) == ">STILL"
    assert procs["last"].poll() is None


def test_no_reply_subject_anywhere_gives_nothing_and_the_worker_lives_on(runtime):
    server, procs, base = runtime

    async def go():
        nc = await _client(server)
        await nc.publish("in-last", _request("lost"))
        await nc.flush()
        await asyncio.sleep(0.3)
        ok = await nc.request("in-last", _request("after"), timeout=5)
        await nc.close()
        return ok

    assert _value(env.decode(asyncio.run(go()).data)) == ">AFTER"
    assert procs["last"].poll() is None
    assert "the reply subject was not found" in (base / "last.log").read_text()


def test_big_messages_are_gzipped_both_ways(runtime):
    server, _, _ = runtime
    value = "a" * (1024 * 1024 + 5)
    request = _request(value)
    assert request.startswith(env.GZIP_MAGIC)

    async def go():
        nc = await _client(server)
        msg = await nc.request("in-last", request, timeout=10)
        await nc.close()
        return msg

    msg = asyncio.run(go())
    assert msg.data.startswith(env.GZIP_MAGIC)
    assert _value(env.decode(msg.data)) == ">" + value.upper()


def test_early_reply_answers_first_and_marks_the_envelope(runtime):
    server, _, _ = runtime

    async def go():
        nc = await _client(server)
        inbox = nc.new_inbox()
        replies = await nc.subscribe(inbox)
        nxt = await nc.subscribe("next")
        await nc.publish("in-last", _request("early"), reply=inbox)
        first = await replies.next_msg(timeout=5)
        with pytest.raises(nats.errors.TimeoutError):
            await replies.next_msg(timeout=0.3)  # the last node's own result is not sent
        await nc.publish("in-middle", _request("early"), reply=inbox)
        early = await replies.next_msg(timeout=5)
        forwarded = await nxt.next_msg(timeout=5)
        await nc.close()
        return first, early, forwarded

    first, early, forwarded = asyncio.run(go())
    assert _value(env.decode(first.data)) == "early answer"
    assert env.decode(first.data).replied
    assert _value(env.decode(early.data)) == "early answer"
    out = env.decode(forwarded.data)
    assert out.replied and _value(out) == "late answer"


def test_the_lean_nats_client_parses_split_and_batched_frames():
    from krtlab.runtime.natsserver import NatsConnection

    class Transport:
        def __init__(self):
            self.sent = b""

        def write(self, data):
            self.sent += data

        def get_extra_info(self, name):
            return None

    async def go():
        conn = NatsConnection("t", None)
        transport = Transport()
        conn._transport = transport
        got = []
        conn._subs[1] = lambda *args: got.append(args)
        header = b"NATS/1.0 503\r\n\r\n"
        data = (
            b'INFO {"max_payload": 1048576}\r\n'
            b"MSG a.b 1 _INBOX.x.1 5\r\nhel\r\n\r\n"  # a payload holding CRLF
            b"PING\r\n"
            + b"HMSG _INBOX.x.2 1 %d %d\r\n" % (len(header), len(header))
            + header
            + b"\r\nMSG c 1 3\r\nabc\r\n+OK\r\nMSG d 9 1\r\nz\r\n"  # sid 9: no callback
        )
        for i in range(len(data)):  # the worst case: one byte at a time
            conn.data_received(data[i : i + 1])
        await asyncio.sleep(0)  # writes leave at the end of the loop iteration
        return got, transport.sent

    got, sent = asyncio.run(go())
    assert got == [
        ("a.b", "_INBOX.x.1", b"hel\r\n", ""),
        ("_INBOX.x.2", "", b"", "503"),
        ("c", "", b"abc", ""),
    ]
    assert sent == b"PONG\r\n"


def _tracked_request(value: str, upstream: list[str], *, tracking_id: str = "t-up") -> bytes:
    msg = env.new_envelope(tracking_id=tracking_id)
    for i, name in enumerate(upstream):
        msg.tracking.add(
            node_name=name, start=f"2026-11-25T10:00:0{i}", end=f"2026-11-25T10:00:0{i}.5"
        )
    msg.payload.Pack(wrappers_pb2.StringValue(value=value))
    return env.encode(msg)


def test_upstream_tracking_entries_travel_on_with_each_node_added_after_them(runtime):
    """KRE's entrypoint reads the whole trace from the last message: every node's entry."""
    server, _, _ = runtime

    async def go():
        nc = await _client(server)
        sub = await nc.subscribe("next")
        inbox = nc.new_inbox()
        answers = await nc.subscribe(inbox)
        await nc.publish("in-middle", _tracked_request("a", ["etl"]), reply=inbox)
        middle = await sub.next_msg(timeout=5)
        last = await nc.request("in-last", _tracked_request("b", ["etl", "middle"]), timeout=5)
        await nc.publish("in-middle", _tracked_request("early", ["etl"]), reply=inbox)
        early = await answers.next_msg(timeout=5)
        await nc.close()
        return env.decode(middle.data), env.decode(last.data), env.decode(early.data)

    middle, last, early = asyncio.run(go())
    assert [t.node_name for t in middle.tracking] == ["etl", "middle"]
    assert [t.node_name for t in last.tracking] == ["etl", "middle", "last"]
    assert (last.tracking[0].start, last.tracking[0].end) == (
        "2026-11-25T10:00:00", "2026-11-25T10:00:00.5"
    )  # fmt: skip
    assert (last.tracking[1].start, last.tracking[1].end) == (
        "2026-11-25T10:00:01", "2026-11-25T10:00:01.5"
    )  # fmt: skip
    # ctx.reply answers early with the trace so far
    assert _value(early) == "early answer" and [t.node_name for t in early.tracking] == ["etl"]
