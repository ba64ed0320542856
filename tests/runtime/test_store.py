"""The local store: Mongo-like queries, where it lives, batching, processes, ``krtlab metrics``."""

import json
import subprocess
import sys
import textwrap
import time

import pytest

from krtlab.cli import main
from krtlab.errors import SpecError
from krtlab.runtime.metrics import metrics_for
from krtlab.runtime.store import LocalStore, shared_store, store_path

DOCS = [
    {"name": "Ann", "age": 31, "tags": ["a", "b"], "address": {"city": "NYC", "zip": "10001"}},
    {"name": "Bob", "age": 25, "tags": ["b"], "address": {"city": "LA"}, "vip": True},
    {"name": "Cy", "age": 40.5, "items": [{"sku": "x", "qty": 2}, {"sku": "y", "qty": 5}]},
    {"name": "Di", "age": "unknown", "vip": None},
]


@pytest.fixture
def people(tmp_path):
    store = LocalStore(tmp_path / "store.sqlite")
    for doc in DOCS:
        store.save("people", doc)
    return store


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ({}, ["Ann", "Bob", "Cy", "Di"]),
        ({"name": "Bob"}, ["Bob"]),
        ({"address.city": "NYC"}, ["Ann"]),
        ({"tags": "b"}, ["Ann", "Bob"]),  # an array matches one of its elements
        ({"tags": ["b"]}, ["Bob"]),  # or as a whole
        ({"tags.0": "a"}, ["Ann"]),
        ({"items.sku": "y"}, ["Cy"]),  # arrays of documents fan out
        ({"age": {"$gt": 30}}, ["Ann", "Cy"]),  # "unknown" is not a number: never compared
        ({"age": {"$gte": 25, "$lt": 40}}, ["Ann", "Bob"]),
        ({"age": {"$lte": 25}}, ["Bob"]),
        ({"items.qty": {"$gt": 4}}, ["Cy"]),
        ({"name": {"$gt": "B"}}, ["Bob", "Cy", "Di"]),
        ({"age": 31.0}, ["Ann"]),
        ({"vip": True}, ["Bob"]),
        ({"vip": 1}, []),  # True is not 1, as in MongoDB
        ({"vip": None}, ["Ann", "Cy", "Di"]),  # null or missing
        ({"vip": {"$exists": True}}, ["Bob", "Di"]),
        ({"vip": {"$exists": False}}, ["Ann", "Cy"]),
        ({"name": {"$ne": "Ann"}}, ["Bob", "Cy", "Di"]),
        ({"address.zip": {"$ne": "10001"}}, ["Bob", "Cy", "Di"]),
        ({"name": {"$in": ["Ann", "Di", "Zed"]}}, ["Ann", "Di"]),
        ({"tags": {"$nin": ["a"]}}, ["Bob", "Cy", "Di"]),
        ({"name": {"$eq": "Cy"}}, ["Cy"]),
        ({"$or": [{"name": "Ann"}, {"age": {"$lt": 30}}]}, ["Ann", "Bob"]),
        ({"$and": [{"tags": "b"}, {"age": {"$gt": 30}}]}, ["Ann"]),
        ({"$nor": [{"tags": "b"}, {"vip": None}]}, []),
        ({"address": {"city": "LA"}}, ["Bob"]),  # a whole subdocument
    ],
)
def test_find_supports_the_common_mongo_queries(people, query, names):
    assert [d["name"] for d in people.find("people", query)] == names


def test_unsupported_operators_say_what_is_supported(people):
    with pytest.raises(SpecError, match=r"'\$regex' is not supported.*supported: \$eq"):
        people.find("people", {"name": {"$regex": "^A"}})
    with pytest.raises(SpecError, match=r"did you mean '\$gte'"):
        people.find("people", {"age": {"$gtee": 3}})
    with pytest.raises(SpecError, match=r"\$in takes a list"):
        people.find("people", {"age": {"$in": 3}})
    with pytest.raises(SpecError, match=r"'\$where'"):
        people.find("people", {"$where": "1"})


def test_documents_keep_order_and_get_an_id(people):
    docs = people.find("people")
    assert [d["name"] for d in docs] == ["Ann", "Bob", "Cy", "Di"]
    assert next(iter(docs[0])) == "_id" and len({d["_id"] for d in docs}) == 4
    people.save("pets", {"_id": "mine", "kind": "cat"})
    assert people.find("pets") == [{"_id": "mine", "kind": "cat"}]
    assert people.collections() == ["people", "pets"]
    people.clear()
    assert people.find("people") == [] and people.collections() == []


def test_where_the_store_lives(tmp_path, monkeypatch):
    monkeypatch.delenv("KRTLAB_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert store_path("v1") == tmp_path / ".krtlab-data" / "v1" / "store.sqlite"
    assert (
        store_path("v1", tmp_path / "p") == tmp_path / "p" / ".krtlab-data" / "v1" / "store.sqlite"
    )
    monkeypatch.setenv("KRTLAB_DATA_DIR", str(tmp_path / "d"))
    assert store_path("v1") == tmp_path / "d" / "v1" / "store.sqlite"
    assert shared_store(store_path("v1")) is shared_store(tmp_path / "d" / "v1" / "store.sqlite")
    assert not store_path("v1").exists()  # reading creates nothing
    assert metrics_for("v1").measurements == []
    assert not store_path("v1").exists()


def test_measurements_are_batched_but_never_lost(tmp_path):
    store = LocalStore(tmp_path / "s.sqlite")
    store.save_measurement("m", {"x": 1}, {"t": "a"})
    other = LocalStore(tmp_path / "s.sqlite")
    assert other.measurements() == []  # still in the batch of the first object
    assert [m["fields"] for m in store.measurements()] == [{"x": 1}]  # reads flush
    store.save_measurement("m", {"x": 2}, {})
    store.close()
    assert [m["fields"] for m in other.measurements()] == [{"x": 1}, {"x": 2}]


WRITER = textwrap.dedent(
    """
    import os, sys, time
    from krtlab.runtime.store import LocalStore
    path, name, go = sys.argv[1:]
    store = LocalStore(path)
    store.find("docs")  # open the file before the start line
    open(go + "." + name, "w").close()
    while not os.path.exists(go):
        time.sleep(0.001)
    first = time.time()
    for i in range(1000):
        store.save("docs", {"writer": name, "i": i})
        store.save_measurement("m", {"i": i}, {"writer": name})
        if i % 4 == 0:
            store.save_prediction("a", "b", date="2026-01-01T00:00:00.000000Z", node=name)
    print(first, time.time())
    """
)


def test_two_processes_write_at_once_and_nothing_is_lost(tmp_path):
    path, go = tmp_path / "shared.sqlite", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), name, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("one", "two")
    ]
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"go.{n}").exists() for n in ("one", "two")):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.005)
    go.touch()  # both start writing now
    spans = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        spans.append([float(x) for x in out.split()])
    (a0, a1), (b0, b1) = spans
    assert a0 < b1 and b0 < a1  # the two writers really overlapped
    store = LocalStore(path)
    for name in ("one", "two"):
        assert [d["i"] for d in store.find("docs", {"writer": name})] == list(range(1000))
    assert len(store.measurements("m")) == 2000  # batched, flushed at exit
    assert len(store.predictions()) == 500


def test_metrics_cli(tmp_path, monkeypatch, capsys, examples):
    monkeypatch.setenv("KRTLAB_DATA_DIR", str(tmp_path))
    project = examples / "greeter"
    assert main(["metrics", str(project)]) == 0
    assert "nothing recorded yet" in capsys.readouterr().out
    store = shared_store(store_path("greeter-v1"))
    store.save("greeter", {"greeting": "Hello John!"})
    store.save_measurement("greetings", {"name": "John"}, {"node": "handler"}, node="py-greeter")
    store.save_prediction("class_x", "class_y", date="2026-01-01T00:00:00.000000Z")
    assert main(["metrics", str(project / "krt.yml")]) == 0
    out = capsys.readouterr().out
    assert "greeter-v1: 1 measurements, 1 predictions, 1 documents" in out
    assert "Hello John!" in out and "class_x" in out and "greetings" in out
    assert main(["metrics", str(project), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["documents"]["greeter"][0]["greeting"] == "Hello John!"
    assert data["measurements"][0]["tags"] == {"node": "handler"}
    assert main(["metrics", str(tmp_path / "nope")]) == 2
