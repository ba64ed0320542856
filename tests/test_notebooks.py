"""The notebooks in notebooks/ run in a real Jupyter kernel and show what they promise."""

import json
import shutil
import subprocess
import tarfile
from xml.etree import ElementTree

import nbformat
import pytest
from nbclient import NotebookClient

from tests.support import REPO

HARNESS = REPO / "tests" / "data" / "kre_py_harness.py"


def run_notebook(name, workdir, kernel_manager):
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    client = NotebookClient(
        nb, km=kernel_manager(), timeout=180, resources={"metadata": {"path": str(workdir)}}
    )
    client.execute(cleanup_kc=True)  # shut the kernel down now, not at exit
    return nb


def text_of(cell):
    out = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            out.append(o["text"])
        elif "data" in o:
            out.append(o["data"].get("text/plain", ""))
    return "".join(out)


def outputs_by_id(nb):
    return {c.id: c for c in nb.cells if c.cell_type == "code"}


def svg_texts(svg):
    """The words a reader sees in an SVG: the text of its <text> elements."""
    root = ElementTree.fromstring(svg.encode("utf-8"))
    return {"".join(e.itertext()).strip() for e in root.iter() if e.tag.endswith("text")}


def test_notebooks_are_committed_without_outputs():
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, path.name


@pytest.mark.slow
def test_quickstart_notebook(tmp_path, kernel_manager, pb313_python):
    nb = run_notebook("01-quickstart-greeter.ipynb", tmp_path, kernel_manager)
    outputs = [text_of(c) for c in nb.cells if c.cell_type == "code"]
    assert "proto module public_input_pb2: Request, Response" in outputs[1]
    assert "greeter-v1: valid, no findings" in outputs[3]
    main_py = outputs[4]
    # the node's own source, the helper and constant it uses, nothing from other cells
    assert "def polite(name):" in main_py and "PUNCTUATION = " in main_py
    assert "def setup(ctx):" in main_py and "async def handler(ctx, data):" in main_py
    assert "import krtlab" not in main_py and "v.workflow" not in main_py
    assert "greeter-v1: valid" in outputs[5] and "py-greeter" in outputs[5]
    cells = outputs_by_id(nb)
    [shown] = [o for o in cells["graph"].outputs if o.get("output_type") == "execute_result"]
    assert {"py-greeter", "PyGreet", "Request", "Response"} <= svg_texts(
        shown["data"]["image/svg+xml"]
    )
    # the request form: a widget in a browser, its fields as text elsewhere
    [form] = [o for o in cells["panel"].outputs if o.get("output_type") == "execute_result"]
    assert "application/vnd.jupyter.widget-view+json" in form["data"]
    assert "rpc PyGreet(entrypoint.Request)" in form["data"]["text/plain"]
    assert "name (string) = " in form["data"]["text/plain"]
    folder = tmp_path / "build" / "greeter"
    assert (tmp_path / "build" / "greeter-v1.krt").is_file()
    # the exported node runs as kre-py would run it, under the runner's protobuf
    proc = subprocess.run(
        [
            str(pb313_python),
            str(HARNESS),
            str(folder),
            "public_input_pb2",
            "Request",
            json.dumps({"name": "  ann "}),
            "src/py-greeter/main.py",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder / "src" / "py-greeter",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["response"] == {"greeting": "Hello Ann!"}


@pytest.mark.slow
def test_price_estimator_notebook(tmp_path, kernel_manager):
    # the notebook reads the model from ../templates/: the same layout, in a temporary folder
    models = REPO / "templates" / "price-estimator" / "models"
    shutil.copytree(models, tmp_path / "templates" / "price-estimator" / "models")
    workdir = tmp_path / "notebooks"
    workdir.mkdir()
    nb = run_notebook("02-price-estimator.ipynb", workdir, kernel_manager)
    cells = outputs_by_id(nb)
    assert "public_input_pb2: Request, Response, MetricRequest, MetricResponse" in text_of(
        cells["proto"]
    )

    # the version draws itself: every node, both workflows, the config variable
    [shown] = [o for o in cells["graph"].outputs if o.get("output_type") == "execute_result"]
    words = svg_texts(shown["data"]["image/svg+xml"])
    assert {"etl", "model", "output", "save-metric", "OUTPUT_PRICE_CURRENCY"} <= words
    assert {"ny-room-price", "save-metrics"} <= {w for t in words for w in t.split()}
    assert text_of(cells["validate"]) == "price-estimator-v1: valid, no findings\n"

    # the price the model's weights give, in the configured currency (EUR)
    weights = json.loads((models / "coefficients.json").read_text())
    features = [1.0, 0.0, 1.0, 3.0, 2.0, 4.0]  # Manhattan, entire home, 3 people, 2 beds, 4 nights
    usd = weights["intercept"] + sum(
        w * x for w, x in zip(weights["weights"], features, strict=True)
    )
    eur = round(usd * 0.92, 2)
    run = text_of(cells["local-run"])
    assert "MakePrediction (ny-room-price) ok" in run
    assert all(f"{n} " in run for n in ("etl", "model", "output"))
    assert f'response: {{"price": {eur}, "currency": "EUR"}}' in run
    assert text_of(cells["local-price"]) == f"local run: {eur} EUR\n"
    assert 'message: "metric saved"' in text_of(cells["local-metric"])
    recorded = text_of(cells["metrics"])
    assert "1 measurements, 1 predictions, 1 documents" in recorded
    assert f'{{"price": {eur}}}' in recorded

    # served like KRE: the same answer as the local run
    assert text_of(cells["served-run"]).splitlines() == [
        f"served run: {eur} EUR",
        "metric: metric saved",
        "same as the local run: True",
    ]

    folder = workdir / "build" / "price-estimator"
    listed = text_of(cells["export"]).splitlines()
    for name in ("krt.yml", "internal_nodes.proto", "models/coefficients.json"):
        assert name in listed and (folder / name).is_file()
    for node in ("etl", "model", "output", "save-metric"):
        assert f"src/{node}/main.py" in listed
    assert (folder / "models" / "coefficients.json").read_bytes() == (
        models / "coefficients.json"
    ).read_bytes()
    # the config value is for local runs only: KRE asks for it at deployment
    manifest = (folder / "krt.yml").read_text()
    assert "OUTPUT_PRICE_CURRENCY" in manifest and "EUR" not in manifest
    bundle = workdir / "build" / "price-estimator-v1.krt"
    assert (
        bundle.is_file()
        and listed[-1] == f"{bundle.relative_to(workdir)} {bundle.stat().st_size} bytes"
    )
    with tarfile.open(bundle) as tar:
        members = set(tar.getnames())
    assert {"krt.yml", "models/coefficients.json", "src/model/main.py"} <= members


@pytest.mark.slow
def test_deploy_and_query_notebook(tmp_path, kernel_manager, monkeypatch):
    # no KAI Server configured: the notebook starts the LocalKai stand-in
    monkeypatch.delenv("KAI_SERVER_URL", raising=False)
    nb = run_notebook("03-deploy-and-query.ipynb", tmp_path, kernel_manager)
    cells = outputs_by_id(nb)
    assert "runtime 'local'" in text_of(cells["server"])
    assert text_of(cells["author"]) == "greeter-v1: valid, no findings\n"

    # the steps show in the cell while they happen (one output, updated in place)
    [steps] = [o for o in cells["deploy"].outputs if o.get("output_type") == "display_data"]
    lines = steps["data"]["text/plain"].splitlines()
    assert lines[0] == "deploying greeter-v1:"
    steps_seen = [s.strip() for s in lines[4:]]
    expected = [
        "greeter-v1 is CREATED", "setting config GREETING", "starting greeter-v1",
        "greeter-v1 is STARTED", "waiting for the pods of greeter-v1 to run",
        "greeter-v1's pods are running", "publishing greeter-v1", "greeter-v1 is PUBLISHED",
    ]  # fmt: skip
    positions = [steps_seen.index(step) for step in expected]
    assert positions == sorted(positions)  # in this order
    waiting, running = positions[4], positions[5]
    pods = steps_seen[waiting + 1 : running]  # each pod's health as it changes
    assert "py-greeter: Running" in pods and "entrypoint: Running" in pods
    assert lines[-1].strip().startswith("done (") and "<ol" in steps["data"]["text/html"]

    # the deployment shows itself as a status card: published, its node running
    [card] = [o for o in cells["deploy"].outputs if o.get("output_type") == "execute_result"]
    assert card["data"]["text/plain"].startswith("<Deployment greeter-v1 PUBLISHED")
    assert "py-greeting (PyGreet)" in card["data"]["text/plain"]
    assert "py-greeter Running" in card["data"]["text/plain"]  # its pod, read from the cluster
    assert "PUBLISHED" in card["data"]["text/html"]

    # queried over gRPC, and the same answer as a local run
    query = text_of(cells["query"]).splitlines()
    assert query[0] == "deployed: {'greeting': 'Hello Ada!'}"
    # printed, the comparison says it in words, with both answers
    assert query[1:4] == [
        "PyGreet: same answer locally and deployed",
        '  local:    {"greeting": "Hello Ada!"}',
        '  deployed: {"greeting": "Hello Ada!"}',
    ]

    # a second version, started beside the first: reached through its own Service
    printed = "".join(o["text"] for o in cells["v2"].outputs if o["output_type"] == "stream")
    assert printed.splitlines() == [
        "STARTED | {'greeting': 'Welcome Ada!'}",
        "published: {'greeting': 'Hello Ada!'}",
    ]
    # publishing it moves the runtime's entrypoint; the first goes back to STARTED
    published = text_of(cells["publish"]).splitlines()
    assert published[0] == "greeter-v1 STARTED (config complete, 1 workflow)"
    assert published[1].startswith("greeter-v2 PUBLISHED (config complete, 1 workflow, published ")
    assert published[2] == "published: {'greeting': 'Welcome Ada!'}"
    # KRE's words, and krtlab's hint where they mislead (a PUBLISHED version is started too)
    assert text_of(cells["rules"]) == (
        "refused: the version must be started before stopping\n"
        "hint: it is PUBLISHED: unpublish() first\n"
    )

    # the entrypoint Services in the KRT V1 spec's form
    services = {line.split()[0]: line.split()[1] for line in text_of(cells["k8s"]).splitlines()}
    assert services == {
        "active-entrypoint": "version-name=greeter-v2-entrypoint",
        "greeter-v1": "version-name=greeter-v1-entrypoint",
    }

    [form] = [o for o in cells["panel"].outputs if o.get("output_type") == "execute_result"]
    assert "application/vnd.jupyter.widget-view+json" in form["data"]
    assert "served: calls deployed greeter-v2" in form["data"]["text/plain"]
    assert text_of(cells["cleanup"]) == "['greeter-v1: STOPPED', 'greeter-v2: STOPPED']\n"
