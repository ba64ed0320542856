"""The price-estimator re-authored from Python functions (templates/price_estimator.py) is the
same version as the hand-written project, and its export runs under the runner's protobuf 3.13."""

import json
import subprocess

import pytest

import krtlab as krt
from tests.support import PRICE_METRIC as METRIC
from tests.support import PRICE_REQUEST as REQUEST
from tests.support import REPO

HARNESS = REPO / "tests" / "data" / "kre_py_harness.py"


@pytest.fixture(scope="module")
def authored():
    return krt.load(REPO / "templates" / "price_estimator.py")  # runs the script


def test_authored_version_matches_the_hand_written_manifest(authored, examples):
    report = authored.validate()
    assert report.ok and not report.findings, str(report)
    assert authored.manifest() == krt.load(examples / "price-estimator").manifest()


def test_authored_messages_are_wire_compatible_with_the_hand_written_proto(authored, examples):
    hand = krt.load(examples / "price-estimator").protos["internal_nodes.proto"]
    mine = authored.protos["internal_nodes.proto"]
    data = mine.EtlOutput(features=[1.0, 2.5]).SerializeToString()
    assert list(hand.EtlOutput.FromString(data).features) == [1.0, 2.5]
    assert mine.EtlOutput.DESCRIPTOR.full_name == hand.EtlOutput.DESCRIPTOR.full_name


def test_exported_files_are_standalone_and_reload_clean(authored, tmp_path):
    folder = authored.export(tmp_path / "pe")
    model_py = (folder / "src" / "model" / "main.py").read_text()
    assert "import json" in model_py and "def load_model(ctx):" in model_py
    assert "def init(ctx):" in model_py and "RATES" not in model_py  # only what it uses
    etl_py = (folder / "src" / "etl" / "main.py").read_text()
    assert "def flag(value: str, wanted: str) -> float:" in etl_py
    assert "krtlab" not in etl_py.split('"""', 2)[2]  # nothing imports krtlab on the runner
    assert (folder / "models" / "coefficients.json").is_file()
    reloaded = krt.load(folder)
    report = reloaded.validate()
    assert report.ok and not report.findings, str(report)


def _run(python, folder, module, cls, payload, *srcs):
    proc = subprocess.run(
        [str(python), str(HARNESS), str(folder), module, cls, json.dumps(payload), *srcs],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "OUTPUT_PRICE_CURRENCY": "EUR"},
        cwd=folder / srcs[0].rsplit("/", 1)[0],
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_authored_handlers_run_under_protobuf_313_like_the_hand_written_ones(
    authored, examples, tmp_path, pb313_python
):
    mine = authored.export(tmp_path / "authored")
    theirs = krt.load(examples / "price-estimator").export(tmp_path / "hand")
    chain = ("src/etl/main.py", "src/model/main.py", "src/output/main.py")
    a = _run(pb313_python, mine, "public_input_pb2", "Request", REQUEST, *chain)
    b = _run(pb313_python, theirs, "public_input_pb2", "Request", REQUEST, *chain)
    assert a["protobuf"] == "3.13.0"
    assert a["type"] == "entrypoint.Response"
    assert a["response"] == b["response"]
    assert a["response"]["currency"] == "EUR" and a["response"]["price"] > 0
    assert a["saved"] == b["saved"]  # the same measurement recorded
    metric = ("src/save-metric/main.py",)
    a = _run(pb313_python, mine, "public_input_pb2", "MetricRequest", METRIC, *metric)
    b = _run(pb313_python, theirs, "public_input_pb2", "MetricRequest", METRIC, *metric)
    assert a["response"] == b["response"] == {"saved": True, "message": "metric saved"}
    assert a["saved"] == b["saved"]


def test_cli_takes_the_script_itself(capsys, tmp_path):
    from krtlab.cli import main

    script = str(REPO / "templates" / "price_estimator.py")
    assert main(["validate", script]) == 0
    assert "price-estimator-v1: valid" in capsys.readouterr().out
    assert main(["build", script, "-o", str(tmp_path / "pe.krt")]) == 0
    assert krt.load(tmp_path / "pe.krt").manifest() == krt.load(script).manifest()
    broken = tmp_path / "broken.py"
    broken.write_text("import krtlab as krt\nv = krt.Version('x-v1')\nraise ValueError('oops')\n")
    assert main(["validate", str(broken)]) == 2
    assert "broken.py failed: line 3: ValueError: oops" in capsys.readouterr().err
