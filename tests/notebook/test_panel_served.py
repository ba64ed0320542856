"""``v.panel()`` against served entrypoints (real nats-server, workers, gRPC), and in a kernel."""

import time

import nbformat
import pytest
from nbclient import NotebookClient

import krtlab as krt
from krtlab.runtime.client import CallError
from tests.support import REPO

pytestmark = pytest.mark.slow

GREETER = REPO / "templates" / "greeter"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(autouse=True)
def _local_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KRTLAB_DATA_DIR", str(tmp_path / "data"))


def test_call_served_starts_a_service_once_and_stop_ends_it():
    v = krt.load(GREETER)
    panel = v.panel()
    panel.set_request(name="John")
    local = panel.submit().response
    try:
        served = panel.submit(served=True)
        assert served.greeting == local.greeting == "Hello John!"
        svc = panel.service
        assert svc is not None and svc.status()["state"] == "running"
        assert "Hello John!" in panel._response.value and "answered by" in panel._status.value
        assert "py-greeter" in panel._trace.value  # the node's log tail
        assert not panel._stop_btn.disabled and f"served: at {svc.address}" in repr(panel)
        panel._call_btn.click()  # the button reuses the running service
        assert panel.service is svc and panel.last.greeting == "Hello John!"
    finally:
        panel._stop_btn.click()
    assert panel.service is None and svc.status()["state"] == "stopped"
    assert panel._stop_btn.disabled and "served: not started" in repr(panel)


def test_start_up_shows_progress_with_the_buttons_off(monkeypatch):
    v = krt.load(GREETER)
    panel = v.panel()
    seen = {}
    real_serve = v.serve

    def slow_serve(**options):
        seen["disabled"] = (panel._run_btn.disabled, panel._call_btn.disabled)
        seen["bar"] = panel._progress.layout.display
        time.sleep(0.8)
        seen["progress"] = panel._progress.value
        seen["status"] = panel._status.value
        return real_serve(**options)

    monkeypatch.setattr(v, "serve", slow_serve)
    try:
        panel.set_request(name="Ann")
        assert panel.submit(served=True).greeting == "Hello Ann!"
    finally:
        panel.close()
    assert seen["disabled"] == (True, True) and seen["bar"] == ""
    assert 0 < seen["progress"] < 1 and "starting nats-server" in seen["status"]
    assert " s</div>" in seen["status"]  # elapsed seconds tick
    assert panel._progress.layout.display == "none" and not panel._run_btn.disabled


def test_targets_a_running_service_or_an_address():
    v = krt.load(GREETER)
    with v.serve(port=0) as svc:
        by_service = v.panel(target=svc)
        by_service.set_request(name="Bo")
        assert by_service.submit(served=True).greeting == "Hello Bo!"
        assert by_service._stop_btn.layout.display == "none"  # not the panel's to stop
        by_address = v.panel(target=svc.address)
        by_address.set_request(name="Cy")
        response = by_address.submit(served=True)
        assert response.greeting == "Hello Cy!" and type(response).__name__ == "Response"
        assert f"served: calls {svc.address}" in repr(by_address)
        by_address.close()
        assert svc.status()["state"] == "running"


def test_served_errors_are_readable():
    v = krt.Version("broken")
    pb = v.proto(GREETER.joinpath("public_input.proto").read_text())

    @v.node(name="py-greeter")
    def greet(req: pb.Request) -> pb.Response:
        raise ValueError("no greeting today")

    v.workflow("greet", entrypoint="PyGreet", sequential=[greet])
    panel = v.panel()
    panel._call_btn.click()  # KRE would refuse it: the findings, not a traceback
    assert "ValidationError: 1 validation error for broken" in panel._response.value
    assert "description" in panel._response.value and panel.service is None
    v.description = "Fails on purpose"
    try:
        with pytest.raises(CallError) as err:
            panel.submit(served=True)
        assert err.value.code == "INTERNAL"
        shown = panel._response.value
        assert "node 'py-greeter' failed (gRPC INTERNAL)" in shown and "no greeting today" in shown
        assert "Traceback" not in shown and panel.last_error is err.value
    finally:
        panel.close()
    nowhere = v.panel(target="127.0.0.1:1")
    nowhere._call_btn.click()  # never raises into the kernel
    assert "gRPC UNAVAILABLE" in nowhere._response.value
    assert "error: gRPC UNAVAILABLE" in repr(nowhere)


def test_panel_in_a_real_kernel(tmp_path, kernel_manager):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            f"import krtlab as krt\nv = krt.load({str(GREETER)!r})\np = v.panel()\np"
        ),
        nbformat.v4.new_code_cell('p.set_request(name="Ann")\nprint(p.submit().response.greeting)'),
        nbformat.v4.new_code_cell(
            "try:\n    print(p.submit(served=True).greeting)\nfinally:\n    p.close()"
        ),
    ]
    client = NotebookClient(
        nb, km=kernel_manager(), timeout=180, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    shown = [o for o in nb.cells[0].outputs if "data" in o]
    assert len(shown) == 1, nb.cells[0].outputs
    data = shown[0]["data"]
    assert WIDGET_MIME in data and data[WIDGET_MIME]["model_id"]
    assert data["text/plain"].startswith("<krtlab panel: greeter-v1 · rpc PyGreet")
    assert "name (string)" in data["text/plain"]
    assert nb.cells[1].outputs[0]["text"] == "Hello Ann!\n"
    assert nb.cells[2].outputs[0]["text"] == "Hello Ann!\n"


def test_one_service_per_version_restarted_after_an_edit():
    v = krt.Version("greeter-v1", description="Greets whoever asks")
    pb = v.proto(GREETER.joinpath("public_input.proto").read_text())

    @v.node(name="py-greeter")
    def greet(req: pb.Request) -> pb.Response:
        return pb.Response(greeting=f"Hello {req.name}!")

    v.workflow("py-greeting", entrypoint="PyGreet", sequential=[greet])
    first, second = v.panel(), v.panel()  # a re-run cell makes a second panel
    try:
        first.set_request(name="Ann")
        assert first.submit(served=True).greeting == "Hello Ann!"
        svc = first.service
        second.set_request(name="Bo")
        assert second.submit(served=True).greeting == "Hello Bo!"
        assert second.service is svc  # no second set of processes

        @v.node(name="py-greeter")
        def greet(req: pb.Request) -> pb.Response:  # the node cell, edited and re-run
            return pb.Response(greeting=f"Hi {req.name}")

        assert first.submit(served=True).greeting == "Hi Ann"  # never yesterday's code
        assert first.service is not svc and svc.status()["state"] == "stopped"
    finally:
        first.close()
    assert second.service is None
