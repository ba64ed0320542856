"""``v.run``: the price-estimator, authored and loaded, run in-process like KRE would run it."""

import json
import os
import shutil

import pytest

import krtlab as krt
from krtlab.runtime.store import LocalStore, store_path
from tests.support import PRICE_METRIC as METRIC
from tests.support import PRICE_REQUEST as REQUEST
from tests.support import REPO


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch):
    """Every test runs in its own folder with its own data dir and no currency set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KRTLAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("OUTPUT_PRICE_CURRENCY", raising=False)
    return tmp_path


@pytest.fixture
def authored():
    return krt.load(REPO / "templates" / "price_estimator.py")  # runs the script


@pytest.fixture
def loaded(examples):
    return krt.load(examples / "price-estimator")


def test_authored_and_loaded_give_the_same_answers(authored, loaded):
    answers = []
    for v in (authored, loaded):
        by_rpc = v.run("MakePrediction", REQUEST)
        by_workflow = v.run("ny-room-price", **REQUEST)
        assert by_rpc.ok and by_workflow.ok
        assert by_rpc.response == by_workflow.response
        assert (by_rpc.rpc, by_rpc.workflow) == ("MakePrediction", "ny-room-price")
        answers.append(json.dumps(by_rpc.to_dict()["response"], sort_keys=True))
        assert [t.node for t in by_rpc.trace] == ["etl", "model", "output"]
        flow = [(type(t.input).__name__, type(t.output).__name__) for t in by_rpc.trace]
        assert flow == [
            ("Request", "EtlOutput"),
            ("EtlOutput", "ModelOutput"),
            ("ModelOutput", "Response"),
        ]
        assert by_rpc.trace[0].input.neighbourhood == "Manhattan"
        assert len(by_rpc.trace[0].output.features) == 6
        assert all(t.error is None and t.duration_ms >= 0 for t in by_rpc.trace)
        assert by_rpc.response.currency == "USD" and by_rpc.response.price > 0
        assert any("OUTPUT_PRICE_CURRENCY" in w for w in by_rpc.warnings)
    assert answers[0] == answers[1]


def test_currency_follows_config_env_file_and_environment(authored, loaded, workdir, monkeypatch):
    for v in (authored, loaded):
        (workdir / ".env").write_text('# local values\nOUTPUT_PRICE_CURRENCY="GBP"  \n')
        assert v.run("MakePrediction", REQUEST).response.currency == "GBP"
        assert "OUTPUT_PRICE_CURRENCY" not in os.environ  # only set during the run
        monkeypatch.setenv("OUTPUT_PRICE_CURRENCY", "USD")
        assert v.run("MakePrediction", REQUEST).response.currency == "USD"
        v.config(OUTPUT_PRICE_CURRENCY="EUR")
        result = v.run("MakePrediction", REQUEST)
        assert result.response.currency == "EUR" and not result.warnings
        assert os.environ["OUTPUT_PRICE_CURRENCY"] == "USD"  # restored
        monkeypatch.delenv("OUTPUT_PRICE_CURRENCY")
        assert b"EUR" not in v.project().files["krt.yml"]  # local values stay local


def test_a_loaded_project_reads_the_env_file_beside_krt_yml(examples, workdir):
    project = workdir / "pe"
    shutil.copytree(examples / "price-estimator", project)
    (project / ".env").write_text("export OUTPUT_PRICE_CURRENCY=GBP # pounds\n")
    v = krt.load(project)
    assert v.run("MakePrediction", REQUEST).response.currency == "GBP"
    (workdir / ".env").write_text("OUTPUT_PRICE_CURRENCY='EUR'\n")  # the working dir wins
    assert v.run("MakePrediction", REQUEST).response.currency == "EUR"


def test_local_values_and_data_never_reach_the_bundle(examples, workdir, monkeypatch):
    project = workdir / "pe"
    shutil.copytree(examples / "price-estimator", project)
    (project / ".env").write_text("OUTPUT_PRICE_CURRENCY=GBP\n")
    monkeypatch.delenv("KRTLAB_DATA_DIR")
    monkeypatch.chdir(project)  # the data dir is then <project>/.krtlab-data
    assert krt.load(project).run("MakePrediction", REQUEST).ok
    files = krt.load(project).project().files
    assert not [f for f in files if f == ".env" or f.startswith(".krtlab-data/")]


def test_save_metrics_is_recorded_and_persists(authored, loaded):
    for v in (authored, loaded):
        result = v.run("SavePredictionMetric", METRIC)
        assert result.response.saved and result.response.message == "metric saved"
        assert v.run("ny-room-price", **REQUEST).ok
    metrics = authored.metrics()
    assert [(p["predicted_value"], p["true_value"]) for p in metrics.predictions] == [
        ("210", "200"),
        ("210", "200"),
    ]
    assert metrics.predictions[0]["node"] == "save-metric"
    assert metrics.predictions[0]["workflow"] == "save-metrics"
    docs = metrics.documents("metrics")
    assert [d["date"] for d in docs] == ["2026-11-25", "2026-11-25"]
    assert [m["tags"] for m in metrics.measurements] == [
        {"currency": "USD", "version": "price-estimator-v1"}
    ] * 2
    assert "1 predictions" not in repr(metrics) and "2 predictions" in repr(metrics)
    assert "<table>" in metrics._repr_html_()
    fresh = LocalStore(store_path("price-estimator-v1"))  # what another process would read
    assert len(fresh.predictions()) == 2
    assert fresh.find("metrics", {"real": {"$gt": 199}, "date": "2026-11-25"}) == docs
    kre_shaped = fresh.find("classificationMetrics", {"predictedValue": "210"})
    assert kre_shaped[0]["versionName"] == "price-estimator-v1"
    json.dumps(metrics.to_dict())


def test_ctx_path_reads_the_bundle_assets(authored, loaded, workdir):
    for v in (authored, loaded):
        assert v.run("MakePrediction", REQUEST).ok  # model's init read models/coefficients.json
        bundle = workdir / "data" / "price-estimator-v1" / "bundle"
        assert (bundle / "models" / "coefficients.json").is_file()
    assert (bundle / "src" / "model" / "main.py").is_file()
    assert (bundle / "src" / "model" / "internal_nodes_pb2.py").is_file()


def test_plans_follow_changes_to_the_version(authored):
    first = authored.run("MakePrediction", REQUEST).response.price

    internal, public = (
        authored.protos["internal_nodes.proto"],
        authored.protos["public_input.proto"],
    )

    @authored.node(name="output")
    def output(ctx, estimate: internal.ModelOutput) -> public.Response:
        return public.Response(price=1.5, currency="XXX")

    assert first != 1.5
    assert authored.run("MakePrediction", REQUEST).response.price == 1.5


def test_a_loaded_node_sending_the_wrong_type_is_caught(examples, workdir):
    project = workdir / "pe"
    shutil.copytree(examples / "price-estimator", project)
    etl = project / "src" / "etl" / "main.py"
    etl.write_text(
        "from internal_nodes_pb2 import ModelOutput\n\n"
        "async def handler(ctx, data):\n    return ModelOutput(price_usd=1.0)\n"
    )
    result = krt.load(project).run("MakePrediction", REQUEST)
    assert str(result.error) == (  # etl says nothing of its type: model is where it fails
        "error in 'model': it takes entrypoint.EtlOutput (read from its source), but 'etl' "
        "before it returns entrypoint.ModelOutput: on KRE, Unpack fails here; make 'model' take "
        "entrypoint.ModelOutput, or change what comes before it"
    )
    assert [t.node for t in result.trace] == ["etl", "model"]
    assert result.trace[0].error is None and result.trace[1].error
    etl.write_text("def handler(ctx, data):\n    return None\n")  # not async: kre-py awaits it
    result = krt.load(project).run("MakePrediction", REQUEST)
    assert (
        str(result.error) == "error in 'etl': object NoneType can't be used in 'await' expression"
    )
    etl.write_text("import no_such_module\n")
    result = krt.load(project).run("MakePrediction", REQUEST)
    assert str(result.error) == (
        "error in 'etl': error loading handler script src/etl/main.py: "
        "No module named 'no_such_module'"
    )
