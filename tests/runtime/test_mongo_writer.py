"""KRE's mongo-writer subject under ``serve``: raw NATS requests (nats-py, an independent client)
get KRE's answers and land where ``krtlab metrics`` reads; a Go node saves through it too."""

from __future__ import annotations

import asyncio
import gzip
import json
import sys
import threading

import nats
import pytest

from krtlab.runtime.metrics import metrics_for
from krtlab.runtime.serve import serve
from krtlab.runtime.store import shared_store, store_path
from tests.runtime.test_serve_support import write_project

VERSION = "writer-v1"
SUBJECT = "mongo_writer"
OK = b'{"success":true}'
PREDICTIONS = "classificationMetrics"
FAILED = b'{"success":false}'

# Stands in for a kre-go binary (no Go toolchain here): its init saves a document at once, before
# it subscribes (a Go node starts in milliseconds), and each message saves a prediction shaped
# as kre-go's ctx.Prediction.Save marshals it, then answers.
GO_NODE = f"""#!{sys.executable}
import asyncio, json, os
import nats
from krtlab.runtime import envelope as env

WRITER = os.environ["KRT_NATS_MONGO_WRITER"]


async def main():
    nc = await nats.connect("nats://" + os.environ["KRT_NATS_SERVER"])
    doc = {{"coll": "go-init", "doc": {{"node": os.environ["KRT_NODE_NAME"]}}}}
    try:
        answer = (await nc.request(WRITER, json.dumps(doc).encode(), timeout=2)).data.decode()
    except Exception as exc:
        answer = repr(exc)
    with open(os.path.join(os.environ["KRT_BASE_PATH"], "..", "go-init-save.txt"), "w") as f:
        f.write(answer)

    async def on_msg(msg):
        req = env.decode(msg.data)
        reply = msg.reply or req.reply
        name = req.payload.value[2:].decode()  # field 1, short string: tag + length
        metric = {{"coll": "classificationMetrics", "doc": {{
            "date": "2026-11-25T10:00:00Z", "error": "", "predictedValue": name,
            "trueValue": "yes", "versionId": os.environ["KRT_VERSION_ID"],
            "versionName": os.environ["KRT_VERSION"]}}}}
        saved = await nc.request(WRITER, json.dumps(metric, separators=(",", ":")).encode(), 1)
        out = env.new_envelope(tracking_id=req.tracking_id, reply=reply)
        out.payload.type_url = "type.googleapis.com/entrypoint.Response"
        greeting = saved.data
        out.payload.value = b"\\x0a" + bytes([len(greeting)]) + greeting
        await nc.publish(reply, env.encode(out))

    await nc.subscribe(os.environ["KRT_NATS_INPUT"], cb=on_msg)
    await asyncio.Event().wait()


asyncio.run(main())
""".encode()

PY_NODE = """from public_input_pb2 import Request, Response


async def handler(ctx, data):
    req = Request()
    data.Unpack(req)
    await ctx.db.save("py-saves", {"name": req.name})
    return Response(greeting=f"Hi {req.name}")
"""


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    root = tmp_path_factory.mktemp("writer")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KRTLAB_DATA_DIR", str(root / "data"))
        project = write_project(
            root / "project",
            version=VERSION,
            nodes={
                "py-greeter": ("src/py-greeter/main.py", PY_NODE, "konstellation/kre-py:1.23.0"),
                "go-greeter": ("bin/go-greeter", GO_NODE, "konstellation/kre-go:1.11.0"),
            },
            workflows={
                "py-greeting": ("PyGreet", ["py-greeter"]),
                "go-greeting": ("GoGreet", ["go-greeter"]),
            },
        )
        with serve(project, port=0) as service:
            yield service


def _requests(svc, payloads: list[bytes], timeout: float = 5.0) -> list[bytes]:
    """Send every payload at once as a NATS request on the mongo-writer subject."""

    async def run() -> list[bytes]:
        nc = await nats.connect(f"nats://{svc.nats_url}")
        try:
            replies = await asyncio.wait_for(
                asyncio.gather(*(nc.request(SUBJECT, p, timeout=timeout) for p in payloads)),
                timeout + 2,
            )
            return [r.data for r in replies]
        finally:
            await nc.close()

    return asyncio.run(run())


def _save(coll: str, doc: object) -> bytes:
    return json.dumps({"coll": coll, "doc": doc}).encode()


def test_a_save_gets_kres_answer_and_lands_in_the_store(svc):
    assert svc.status()["mongo_writer"] == {"subject": SUBJECT, "ready": True}
    big = {"name": "Bo", "blob": "x" * (2 * 1024 * 1024)}  # kre-py gzips over 1 MiB
    payloads = [
        _save("people", {"name": "Ann", "age": 31, "tags": ["a"]}),
        gzip.compress(_save("people", big), 9),
        b'{"Coll": "people", "DOC": {"name": "Cy"}}',  # Go matches fields case-insensitively
    ]
    assert _requests(svc, payloads) == [OK, OK, OK]
    people = metrics_for(VERSION).documents("people")
    assert [d["name"] for d in people] == ["Ann", "Bo", "Cy"]
    ann = people[0]
    # Go decodes into interface{}: numbers reach Mongo as doubles; Mongo adds an ObjectId
    assert ann["age"] == 31.0 and isinstance(ann["age"], float) and ann["tags"] == ["a"]
    assert len(ann["_id"]) == 24 and len({d["_id"] for d in people}) == 3
    assert people[1]["blob"] == big["blob"]


def test_a_prediction_is_a_prediction_for_krtlab_metrics(svc):
    doc = {  # what kre-py's ctx.prediction.save sends
        "date": "2026-11-25T10:00:00.123456Z",
        "error": "",
        "predictedValue": "cat",
        "trueValue": "dog",
        "extra": {"score": 0.5},
        "versionId": "0123456789abcdef01234567",
        "versionName": VERSION,
    }
    assert _requests(svc, [_save("classificationMetrics", doc)]) == [OK]
    metrics = metrics_for(VERSION)
    (mine,) = [p for p in metrics.predictions if p["predicted_value"] == "cat"]
    assert mine["true_value"] == "dog" and mine["extra"] == {"score": 0.5}
    assert mine["date"] == doc["date"] and mine["error"] == "" and mine["version"] == VERSION
    assert mine["node"] == ""  # a raw client is no node
    assert "cat" in metrics.format()
    # ctx.db.find("classificationMetrics") sees it once, shaped as KRE stores it
    store = shared_store(store_path(VERSION))
    (found,) = [d for d in store.find(PREDICTIONS) if d["predictedValue"] == "cat"]
    assert found["trueValue"] == "dog" and found["versionName"] == VERSION


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"{not json", "error parsing"),
        (b'["people", {}]', "error parsing"),
        (b'{"coll": 5, "doc": {}}', "error parsing"),
        (b'{"coll": "people", "doc": {"n": NaN}}', "error parsing"),
        (b"\x1f\x8bnot gzip at all", "error uncompressing"),
        (b'{"coll": "people"}', "document is nil"),
        (b'{"coll": "people", "doc": [1, 2]}', "to a BSON Document"),
        (b'{"coll": "", "doc": {"a": 1}}', "Invalid namespace"),
        (b'{"coll": "people", "doc": {"$set": 1}}', "$ prefixed field"),
    ],
)
def test_a_malformed_save_gets_kres_failure_and_stores_nothing(svc, payload, why):
    def logged() -> int:
        lines = svc.logs("entrypoint").splitlines()
        return sum(1 for line in lines if "ERROR mongo-writer: Error: " in line and why in line)

    before, seen = metrics_for(VERSION).to_dict(), logged()
    assert _requests(svc, [payload]) == [FAILED]
    after = metrics_for(VERSION).to_dict()
    assert after["documents"] == before["documents"]
    assert after["predictions"] == before["predictions"]
    assert logged() == seen + 1  # KRE's writer logs why, the answer does not say


def test_an_empty_payload_gets_no_answer_as_kres_writer_crashes_on_it(svc):
    with pytest.raises(nats.errors.TimeoutError):
        _requests(svc, [b""], timeout=0.5)
    assert "panics on this payload" in svc.logs("entrypoint")
    assert _requests(svc, [_save("after-empty", {"ok": True})]) == [OK]  # still answering


def test_20_concurrent_saves_are_answered_together(svc):
    # kre-py waits 1 s for a prediction's answer: 20 of them queued one by one behind a slow path
    # would take far longer than this whole batch is given
    payloads = [_save("burst", {"i": i}) for i in range(20)]
    assert _requests(svc, payloads, timeout=3.0) == [OK] * 20
    burst = metrics_for(VERSION).documents("burst")
    assert sorted(d["i"] for d in burst) == [float(i) for i in range(20)]


def test_a_go_node_saves_through_the_subject_from_its_init_on(svc):
    # the Go node started once the writer answered: its very first save succeeded
    assert (svc.run_dir / "go-init-save.txt").read_text() == OK.decode()
    assert metrics_for(VERSION).documents("go-init") != []
    assert svc.call("GoGreet", name="Eve").greeting == OK.decode()
    (eve,) = [p for p in metrics_for(VERSION).predictions if p["predicted_value"] == "Eve"]
    assert (eve["node"], eve["workflow"]) == ("go-greeter", "go-greeting")
    assert eve["date"] == "2026-11-25T10:00:00Z" and eve["extra"] is None


def test_krtlab_workers_still_save_to_the_store_directly(svc):
    assert svc.call("PyGreet", name="Max").greeting == "Hi Max"
    assert {"name": "Max"}.items() <= metrics_for(VERSION).documents("py-saves")[-1].items()
    # the writer runs in the entrypoint's process, not in this one
    assert not any(t.name == "krtlab-mongo-writer" for t in threading.enumerate())
