"""``v.serve()`` of the price-estimator: real nats-server, worker processes and gRPC, under load."""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib.util
import sys
import urllib.request

import grpc
import pytest

import krtlab as krt
from krtlab.errors import SpecError
from krtlab.runtime.serve import ServeError, serve
from krtlab.runtime.store import LocalStore, store_path
from tests.runtime.test_serve_support import PRICE, expected_price
from tests.support import REPO

NEIGHBOURHOODS = ("Manhattan", "Brooklyn", "Queens", "manhattan")
ROOMS = ("Entire home/apt", "Private room", "Shared room")


def _prediction(i: int) -> dict:
    return {
        "neighbourhood": NEIGHBOURHOODS[i % 4],
        "room_type": ROOMS[i % 3],
        "accommodates": 1 + i % 7,
        "bedrooms": i % 5,
        "minimum_nights": i,  # makes every request (and so every price) distinct
    }


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        path = tmp_path_factory.mktemp("data")
        mp.setenv("KRTLAB_DATA_DIR", str(path))
        mp.delenv("OUTPUT_PRICE_CURRENCY", raising=False)
        yield path


@pytest.fixture(scope="module")
def svc(data_dir):
    version = krt.load(PRICE)
    with serve(version, port=0) as service:
        yield service


def test_serves_kre_topology(svc):
    status = svc.status()
    assert status["state"] == "running"
    workers = status["workers"]
    assert [(w["workflow"], w["node"]) for w in workers] == [
        ("ny-room-price", "etl"),
        ("ny-room-price", "model"),
        ("ny-room-price", "output"),
        ("save-metrics", "save-metric"),
    ]
    etl, model, output, save = workers
    assert etl["input"] == "price-estimator-v1-MakePrediction-entrypoint"
    assert etl["output"] == model["input"] and model["output"] == output["input"]
    assert output["output"] == "" and save["output"] == ""
    assert save["input"] == "price-estimator-v1-SavePredictionMetric-entrypoint"
    for w in workers:
        assert len(w["node_id"]) == 5 and w["node_id"].isalpha() and w["node_id"].islower()
        assert w["state"] == "ready" and w["pid"]
    assert len({etl["output"], model["output"]}) == 2 and len(etl["output"]) == 5
    assert status["nats"]["pid"] and status["entrypoint"]["pid"]
    assert svc.address == f"127.0.0.1:{svc.port}"
    assert "price-estimator-v1" in repr(svc) and "4/4 workers ready" in repr(svc)


def test_2000_requests_at_concurrency_32_across_both_workflows(svc, data_dir):
    n = 1000

    def predict(i: int):
        return i, svc.call("MakePrediction", _prediction(i))

    def save(i: int):
        metric = {"predicted_price": float(i), "real_price": i + 0.5, "date": f"day-{i}"}
        return i, svc.call("SavePredictionMetric", metric)

    jobs = [(predict, i) for i in range(n)] + [(save, i) for i in range(n)]
    jobs = jobs[::2] + jobs[1::2]  # interleave the two workflows
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda job: (job[0].__name__, *job[0](job[1])), jobs))
    prices = {i: r for kind, i, r in results if kind == "predict"}
    saves = {i: r for kind, i, r in results if kind == "save"}
    assert len(prices) == n and len(saves) == n
    for i, response in prices.items():
        assert response.price == pytest.approx(expected_price(_prediction(i)), abs=1e-9), i
        assert response.currency == "USD"
    assert all(r.saved and r.message == "metric saved" for r in saves.values())
    # nothing lost or duplicated: one stored document per request, each with its own date
    store = LocalStore(store_path("price-estimator-v1"))
    docs = store.find("metrics")
    assert sorted(d["date"] for d in docs) == sorted(f"day-{i}" for i in range(n))
    assert len(store.predictions()) == n


def test_unknown_rpc_is_unimplemented(svc):
    with grpc.insecure_channel(svc.address) as channel:
        with pytest.raises(grpc.RpcError) as info:
            channel.unary_unary("/entrypoint.Entrypoint/Nope")(b"", timeout=5)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    with pytest.raises(ServeError, match=r"no rpc 'MakePredictions'.*MakePrediction"):
        svc.call("MakePredictions")


def test_bad_request_bytes_are_invalid_argument(svc):
    with grpc.insecure_channel(svc.address) as channel:
        call = channel.unary_unary("/entrypoint.Entrypoint/MakePrediction")
        with pytest.raises(grpc.RpcError) as info:
            call(b"\xff\xff\xff", timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_call_accepts_messages_dicts_and_fields(svc):
    pb = svc.version.protos["public_input.proto"]
    req = _prediction(3)
    by_message = svc.call("MakePrediction", pb.Request(**req))
    by_dict = svc.call("MakePrediction", req)
    by_fields = svc.call("MakePrediction", **req)
    assert by_message == by_dict == by_fields
    assert by_fields.price == pytest.approx(expected_price(req))


def test_web_port_lists_and_serves_the_protos(svc):
    with urllib.request.urlopen(svc.web_url, timeout=5) as resp:
        index = resp.read().decode()
    assert "public_input.proto" in index and "internal_nodes.proto" in index
    with urllib.request.urlopen(svc.web_url + "public_input.proto", timeout=5) as resp:
        assert resp.read() == (PRICE / "public_input.proto").read_bytes()


def test_logs_are_kre_formatted_per_node(svc):
    logs = svc.logs("etl")
    assert "listening to 'price-estimator-v1-MakePrediction-entrypoint' subject" in logs
    assert "INFO" in logs
    assert "serving entrypoint.Entrypoint" in svc.logs("krtlab")
    assert "Server is ready" in svc.logs("nats-server")
    with pytest.raises(ServeError, match=r"no logs for 'etll'.*etl"):
        svc.logs("etll")


def test_a_request_that_does_not_fit_the_message_is_refused_before_sending(svc):
    with pytest.raises(SpecError, match="no_such_field"):
        svc.call("MakePrediction", {"no_such_field": 1})
    with pytest.raises(SpecError, match=r"entrypoint\.Request"):
        svc.call("MakePrediction", svc.version.protos["public_input.proto"].Response())


def test_config_values_reach_the_nodes_and_a_running_loop_is_no_obstacle(data_dir):
    """Jupyter runs an event loop in the main thread; serve() and call() must still work."""

    async def notebook_cell():
        with serve(PRICE, port=0, config={"OUTPUT_PRICE_CURRENCY": "EUR"}) as service:
            return service.call("MakePrediction", _prediction(5)), service.ready_seconds

    response, ready = asyncio.run(notebook_cell())
    assert response.currency == "EUR"
    assert response.price == pytest.approx(expected_price(_prediction(5), "EUR"))
    assert ready < 10


def test_the_port_is_refused_when_taken(svc):
    with pytest.raises(ServeError, match=f"127.0.0.1:{svc.port}.*in use"):
        serve(PRICE, port=svc.port)


def test_an_authored_version_serves_with_its_config(data_dir):
    spec = importlib.util.spec_from_file_location(
        "price_estimator_served", REPO / "templates" / "price_estimator.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        v = module.v
        v.config(OUTPUT_PRICE_CURRENCY="GBP")  # a local value, reaching the worker's env
        with v.serve(port=0) as service:
            response = service.call("MakePrediction", _prediction(7))
            saved = service.call("SavePredictionMetric", predicted_price=1.0, date="authored")
    finally:
        sys.modules.pop(spec.name, None)
    assert response.currency == "GBP"
    assert response.price == pytest.approx(expected_price(_prediction(7), "GBP"))
    assert saved.saved
