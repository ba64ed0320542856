"""``v.panel()`` without a browser: forms from protos, local runs, errors and plain text.

ipywidgets works without a frontend (its comms are no-ops), so the widgets are checked here as
objects: their types, their values, and what the panel puts in its HTML widgets.
"""

import importlib.util
import subprocess
import sys

import ipywidgets as W
import pytest
from google.protobuf import json_format

import krtlab as krt
from krtlab.errors import SpecError
from tests.support import REPO

GREETER = REPO / "templates" / "greeter"
PRICE = REPO / "templates" / "price-estimator"

ALL_TYPES = """syntax = "proto3";
package entrypoint;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
import "google/protobuf/struct.proto";

enum Color { RED = 0; GREEN = 1; BLUE = 2; }

// Everything a request can hold.
message Request {
  // who is asking
  string name = 1;
  int32 small = 2;
  int64 big = 3;
  uint32 count = 4;
  double ratio = 5;
  float f = 6;
  bool flag = 7;
  bytes blob = 8;
  Color color = 9;
  repeated string tags = 10;
  repeated int64 ids = 11;
  repeated Color colors = 12;
  Address home = 13;
  repeated Address others = 14;
  map<string, int32> scores = 15;
  map<int64, Address> by_id = 16;
  google.protobuf.Timestamp at = 17;
  Tree tree = 18;
  oneof contact { string email = 19; Address post = 20; }
  optional int32 maybe = 21;
  google.protobuf.Int64Value wrapped = 22;
  google.protobuf.Struct extra = 23;
  repeated bytes blobs = 24;
  uint64 huge = 25;
}
message Address { string city = 1; int32 zip = 2; }
message Tree { string label = 1; Tree left = 2; repeated Tree kids = 3; }
message Response { string greeting = 1; }
service Entrypoint {
  rpc Echo (Request) returns (Response) {};
  rpc Other (Address) returns (Response) {};
}
"""

FULL = {
    "name": "Ann\nLee",
    "small": -5,
    "big": 2**62,
    "count": 7,
    "ratio": 0.25,
    "f": 1.5,
    "flag": True,
    "blob": "AAEC/w==",
    "color": "BLUE",
    "tags": ["a", "", "b c", '"quoted"'],
    "ids": [1, -2, 2**60],
    "colors": ["GREEN", "RED"],
    "home": {"city": "NYC", "zip": 10001},
    "others": [{"city": "A", "zip": 1}, {"city": "B"}],
    "scores": {"x": 1, "y": -2},
    "by_id": {"5": {"city": "Five", "zip": 5}},
    "at": "2026-01-31T09:30:00Z",
    "tree": {"label": "root", "left": {"label": "l", "left": {"label": "ll"}}, "kids": [{}]},
    "post": {"city": "P", "zip": 9},
    "maybe": 3,
    "wrapped": "42",
    "extra": {"a": [1, "x"], "b": None},
    "blobs": ["AQ==", ""],
    "huge": 2**64 - 1,
}


@pytest.fixture(autouse=True)
def _local_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KRTLAB_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture
def every_type():
    v = krt.Version("all-types")
    pb = v.proto(ALL_TYPES)

    @v.node(name="echo")
    def echo(req: pb.Request) -> pb.Response:
        return pb.Response(greeting=f"{req.name} {req.home.city} {len(req.others)}")

    v.workflow("echo", entrypoint="Echo", sequential=[echo])
    return v, pb


@pytest.fixture(scope="module")
def authored_price():
    spec = importlib.util.spec_from_file_location(
        "price_estimator_panel", REPO / "templates" / "price_estimator.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module.v
    sys.modules.pop(spec.name, None)


def kinds(form):
    return {name: type(editor.input).__name__ for name, editor in form.editors.items()}


# -- forms -------------------------------------------------------------------------------------


def test_greeter_form_is_one_text_field():
    panel = krt.load(GREETER).panel()
    assert kinds(panel.form) == {"name": "Text"}
    assert panel.rpc == "PyGreet" and panel.request() == {"name": ""}
    assert panel._pick.layout.display == "none"  # one rpc: no selector shown


@pytest.mark.parametrize("source", ["loaded", "authored"])
def test_price_estimator_forms(source, authored_price):
    v = krt.load(PRICE) if source == "loaded" else authored_price
    panel = v.panel()
    assert kinds(panel.form) == {
        "neighbourhood": "Text",
        "room_type": "Text",
        "accommodates": "BoundedIntText",
        "bedrooms": "BoundedIntText",
        "minimum_nights": "BoundedIntText",
    }
    box = panel.form.editors["accommodates"].input
    assert (box.min, box.max) == (-(2**31), 2**31 - 1)  # int32's range
    assert panel._pick.layout.display == "" and list(panel._pick.options) == [
        "MakePrediction",
        "SavePredictionMetric",
    ]
    panel._pick.value = "SavePredictionMetric"  # the selector rebuilds the form
    assert kinds(panel.form) == {
        "predicted_price": "FloatText",
        "real_price": "FloatText",
        "date": "Text",
    }
    assert "SavePredictionMetric" in panel._title.value and "save-metrics" in panel._title.value


def test_every_type_has_its_widget(every_type):
    v, _ = every_type
    form = v.panel("Echo").form
    assert kinds(form) == {
        "name": "Text",
        "small": "BoundedIntText",
        "big": "BoundedIntText",
        "count": "BoundedIntText",
        "ratio": "FloatText",
        "f": "FloatText",
        "flag": "Checkbox",
        "blob": "Text",
        "color": "Dropdown",
        "tags": "Textarea",
        "ids": "Textarea",
        "colors": "Textarea",
        "home": "Checkbox",  # the "set" box of a nested message
        "others": "Button",  # "add" a row
        "scores": "Button",
        "by_id": "Button",
        "at": "Text",
        "tree": "Checkbox",
        "email": "Text",
        "post": "Checkbox",
        "maybe": "BoundedIntText",
        "wrapped": "Text",
        "extra": "Textarea",
        "blobs": "Textarea",
        "huge": "BoundedIntText",
    }
    assert (form.editors["count"].input.min, form.editors["count"].input.max) == (0, 2**32 - 1)
    assert form.editors["big"].input.max == 2**63 - 1
    assert list(form.editors["color"].input.options) == [(n, n) for n in ("RED", "GREEN", "BLUE")]
    label = form.editors["name"].row.children[0].value
    assert "<b>name</b>" in label and "string" in label and 'title="who is asking"' in label
    assert "map&lt;int64, Address&gt;" in form.editors["by_id"].row.children[0].children[0].value
    assert "repeated Color" in form.editors["colors"].row.children[0].value
    assert "GREEN" in form.editors["colors"].input.placeholder
    home = form.editors["home"]
    assert kinds(home.form) == {"city": "Text", "zip": "BoundedIntText"}  # nested box, built


def test_recursive_messages_are_built_on_demand(every_type):
    v, _ = every_type
    form = v.panel("Echo").form
    tree = form.editors["tree"]
    assert tree.form is not None  # not recursive at this level
    left = tree.form.editors["left"]
    assert left.form is None and "recursive" in left.box.children[0].value
    left.input.value = True  # ticking "set" builds one more level, no further
    assert left.form is not None and left.form.editors["left"].form is None
    assert form.value["tree"] == {"label": "", "left": {"label": "", "kids": []}, "kids": []}


def test_every_type_round_trips_form_dict_message(every_type):
    v, pb = every_type
    panel = v.panel("Echo")
    msg = json_format.ParseDict(FULL, pb.Request())
    panel.set_request(msg)
    data = panel.request()
    assert json_format.ParseDict(data, pb.Request()) == msg
    assert data["big"] == 2**62 and data["huge"] == 2**64 - 1 and data["wrapped"] == 42
    assert data["color"] == "BLUE" and data["blob"] == "AAEC/w==" and data["at"] == FULL["at"]
    assert "email" not in data and data["post"] == {"city": "P", "zip": 9}
    assert panel.form.editors["tags"].input.value == 'a\n""\nb c\n"\\"quoted\\""'
    assert panel.form.message() == msg
    # and back from the dict: the same form
    panel.set_request({})
    empty = panel.request()
    assert empty["name"] == "" and empty["tags"] == [] and "home" not in empty and "at" not in empty
    panel.set_request(data)
    assert json_format.ParseDict(panel.request(), pb.Request()) == msg


def test_editing_widgets_builds_the_request(every_type):
    v, pb = every_type
    panel = v.panel("Echo")
    form = panel.form
    assert "home" not in form.value and "post" not in form.value and "maybe" not in form.value
    form.editors["home"].form.editors["city"].input.value = "Oslo"  # ticks "set" by itself
    assert form.editors["home"].input.value is True
    form.editors["ids"].input.value = "1\n\n-7\n"
    form.editors["blob"].input.value = "aGk"  # unpadded base64 is fine
    form.editors["at"].input.value = "2026-02-01T10:00:00+01:00"
    form.oneofs["contact"].value = "email"
    form.editors["email"].input.value = "a@b.c"
    row = form.editors["others"].add()[0]
    row.form.editors["zip"].input.value = 12
    key, value = form.editors["scores"].add()
    key.input.value, value.input.value = "k", 3
    data = panel.request()
    assert data["home"] == {"city": "Oslo", "zip": 0} and data["ids"] == [1, -7]
    assert data["blob"] == "aGk=" and data["email"] == "a@b.c" and "post" not in data
    assert data["others"] == [{"city": "", "zip": 12}] and data["scores"] == {"k": 3}
    msg = json_format.ParseDict(data, pb.Request())
    assert msg.at.ToJsonString() == "2026-02-01T09:00:00Z" and msg.blob == b"hi"
    form.editors["home"].input.value = False  # unticked: left out again
    assert "home" not in panel.request()


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        ("ids", "1\nx", "ids[line 2]: "),
        ("tags", "fine", None),
        ("colors", "PURPLE", "colors[line 1]: "),
        ("blob", "@@", "blob: '@@' is not base64"),
        ("at", "yesterday", "at: "),
        ("extra", "{nope", "extra: not JSON"),
        ("wrapped", "x", "wrapped: "),
    ],
)
def test_bad_text_names_the_field(every_type, field, text, message):
    v, _ = every_type
    panel = v.panel("Echo")
    panel.form.editors[field].input.value = text
    if message is None:
        panel.request()
        return
    with pytest.raises(SpecError) as err:
        panel.request()
    assert str(err.value).startswith(message)
    with pytest.raises(SpecError):
        panel.submit()
    assert message.split(":")[0] in panel._response.value and "Traceback" not in repr(panel)


def test_out_of_range_values_are_refused(every_type):
    v, _ = every_type
    panel = v.panel("Echo")
    with pytest.raises(SpecError, match="small"):
        panel.set_request(small=2**40)
    panel.form.editors["ids"].input.value = str(2**64)
    with pytest.raises(SpecError, match=r"ids\[line 1\]: .*out of range"):
        panel.request()


def test_unknown_fields_and_rpcs_are_refused():
    v = krt.load(GREETER)
    with pytest.raises(SpecError, match=r"no rpc 'PyGret'.*PyGreet"):
        v.panel("PyGret")
    panel = v.panel()
    with pytest.raises(SpecError, match="nme"):
        panel.set_request(nme="Ann")
    with pytest.raises(SpecError, match="no rpcs yet"):
        krt.Version("empty").panel()
    with pytest.raises(SpecError, match="host:port"):
        v.panel(target="localhost")


# -- running -----------------------------------------------------------------------------------


def test_submit_runs_locally_and_shows_response_and_trace():
    panel = krt.load(GREETER).panel()
    panel.set_request({"name": "John"})
    result = panel.submit()
    assert result.ok and result.response.greeting == "Hello John!"
    assert "Hello John!" in panel._response.value and "<pre" in panel._response.value
    assert "<svg" in panel._trace.value and "py-greeter" in panel._trace.value
    assert "ran locally" in panel._status.value
    assert not panel._run_btn.disabled and panel.last is result


def test_the_response_shows_once_and_the_graph_fits_the_panel():
    panel = krt.load(GREETER).panel()
    panel.set_request({"name": "John"})
    panel.submit()
    # beside the form: the response; below both: the graph and the table, not the answer again
    assert panel._response.value.count("Hello John!") == 1
    assert "Hello John!" not in panel._trace.value
    assert '<svg style="max-width:100%;height:auto"' in panel._trace.value  # scaled to the cell
    assert panel._trace in panel.children and panel._response not in panel.children


def test_run_button_does_what_submit_does(authored_price, monkeypatch):
    monkeypatch.setenv("OUTPUT_PRICE_CURRENCY", "EUR")
    panel = authored_price.panel("MakePrediction")
    panel.set_request(
        neighbourhood="Manhattan",
        room_type="Entire home/apt",
        accommodates=3,
        bedrooms=2,
        minimum_nights=4,
    )
    panel._run_btn.click()
    assert panel.last.ok, panel._response.value
    assert '"currency": "EUR"' in panel._response.value and '"price"' in panel._response.value
    for node in ("etl", "model", "output"):
        assert node in panel._trace.value


def test_a_failing_node_is_named_not_a_traceback():
    v = krt.Version("broken")
    pb = v.proto(GREETER.joinpath("public_input.proto").read_text())

    @v.node(name="py-greeter")
    def greet(ctx, req: pb.Request) -> pb.Response:
        ctx.logger.info("looking for a greeting")
        raise ValueError(f"no greeting for {req.name}")

    v.workflow("greet", entrypoint="PyGreet", sequential=[greet])
    panel = v.panel()
    panel.set_request(name="Ann")
    result = panel.submit()  # like v.run: the failure is in the result
    assert not result.ok
    shown = panel._response.value
    assert "node 'py-greeter' failed" in shown and "ValueError: no greeting for Ann" in shown
    assert "Traceback" not in shown  # (the graph keeps it in the failed node's tooltip)
    assert "py-greeter" in panel._trace.value  # the graph with the failing node
    assert "node logs" in panel._trace.value and "looking for a greeting" in panel._trace.value
    assert "failed locally: node 'py-greeter' failed" in repr(panel)
    panel._run_btn.click()  # the button never raises into the kernel
    assert "failed" in panel._status.value
    # the error once, beside the form; the status line under the buttons only says it failed
    assert "ValueError" not in panel._status.value and shown.count("no greeting for Ann") == 1


def test_the_form_follows_a_proto_rerun():
    v = krt.Version("growing")
    pb = v.proto(GREETER.joinpath("public_input.proto").read_text())

    @v.node(name="py-greeter")
    def greet(req: pb.Request) -> pb.Response:
        return pb.Response(greeting=f"Hi {req.name}")

    v.workflow("greet", entrypoint="PyGreet", sequential=[greet])
    panel = v.panel()
    panel.set_request(name="Ann")
    v.proto(GREETER.joinpath("public_input.proto").read_text().replace(
        "string name = 1;", "string name = 1; int32 times = 2;"
    ))  # fmt: skip
    assert panel.request() == {"name": "Ann", "times": 0}
    assert "rebuilt" in panel._status.value


class FakeDeployment:
    """What the panel uses of a krtlab.deploy.Deployment, with a server that can go away."""

    def __init__(self, version, status="PUBLISHED"):
        from types import SimpleNamespace

        self.name, self.version = "greeter-v2", version
        self.server = SimpleNamespace(url="http://127.0.0.1:35187")
        self._info = SimpleNamespace(status=status)  # what deploy() left: the panel reads it
        self.status_now: str | None = status  # None: the server is gone
        self.refreshed = 0

    def refresh(self):
        from types import SimpleNamespace

        from krtlab.errors import DeployError

        self.refreshed += 1
        if self.status_now is None:
            raise DeployError(f"cannot reach the KAI Server at {self.server.url}/graphql: "
                              "[Errno 111] Connection refused", operation="Version")  # fmt: skip
        return SimpleNamespace(status=self.status_now)

    def call(self, rpc, request):
        from krtlab.errors import DeployError

        status = self.refresh().status  # as Deployment.call does first
        if status not in ("STARTED", "PUBLISHED"):
            raise DeployError(f"{self.name} is {status}; only a STARTED or PUBLISHED version "
                              "answers calls", operation=f"calling {self.name}")  # fmt: skip
        return {"greeting": f"Hello {request['name']}!"}

    def compare(self, *args, **kwargs):
        raise NotImplementedError


def test_a_deployment_stopped_since_the_panel_was_made_is_named():
    from krtlab.errors import DeployError

    v = krt.load(GREETER)
    target = FakeDeployment(v)
    panel = v.panel(target=target)
    panel.set_request(name="Ann")
    assert panel.submit(served=True).greeting == "Hello Ann!"
    assert panel._call_btn.description == "Call deployed"

    target.status_now = "STOPPED"  # a later cell stopped it
    with pytest.raises(DeployError, match="is STOPPED"):
        panel.submit(served=True)
    shown = panel._response.value
    assert "greeter-v2 is STOPPED: the deployment was stopped after this panel was made" in shown
    assert "It was PUBLISHED then: a later cell, or someone else, stopped it." in shown
    assert "start()" in shown
    assert shown.count("only a STARTED or PUBLISHED version answers calls") == 1  # once
    assert "calling PyGreet failed" in panel._status.value and "STOPPED" not in panel._status.value


def test_a_kai_server_gone_since_the_panel_was_made_is_named():
    from krtlab.errors import DeployError

    v = krt.load(GREETER)
    target = FakeDeployment(v)
    panel = v.panel(target=target)
    panel.set_request(name="Ann")
    target.status_now = None  # kai.stop() in the clean-up cell
    panel._call_btn.click()  # the button never raises into the kernel
    assert isinstance(panel.last_error, DeployError)
    shown = panel._response.value
    assert "greeter-v2 cannot be called: its KAI Server does not answer any more" in shown
    assert (
        "Nothing answers at http://127.0.0.1:35187: the server was stopped after this panel "
        "was made (greeter-v2 was PUBLISHED then)" in shown
    )
    assert shown.count("Connection refused") == 1 and "Run locally works without it" in shown
    assert "Connection refused" not in panel._status.value


def test_an_error_the_deployment_answers_does_not_ask_the_server_again():
    from krtlab.runtime.client import CallError

    v = krt.load(GREETER)
    target = FakeDeployment(v)
    panel = v.panel(target=target)

    def fails(rpc, request):
        raise CallError(rpc, "INTERNAL", "error in 'py-greeter': boom")

    target.call = fails
    with pytest.raises(CallError):
        panel.submit(served=True)
    assert target.refreshed == 0  # the version answered: nothing is gone
    assert "node 'py-greeter' failed (gRPC INTERNAL)" in panel._response.value


# -- text --------------------------------------------------------------------------------------


def test_repr_and_mimebundle_are_readable_text(every_type):
    v, _ = every_type
    panel = v.panel()
    panel.set_request(name="Ann", ids=[1, 2], home={"city": "Oslo"})
    text = repr(panel)
    assert text.startswith("<krtlab panel: all-types · rpc Echo(entrypoint.Request)")
    assert '    name (string) = "Ann"' in text and "    ids (repeated int64) = [1, 2]" in text
    assert "    home (Address) = " in text and "    email (string) = (not set)" in text
    assert "  last: nothing run yet" in text and "  served: not started" in text
    bundle = panel._repr_mimebundle_()
    assert bundle["text/plain"] == text  # whole, not cut at 110 characters
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.model_id
    assert isinstance(panel, W.VBox)
    panel.submit()
    assert "last: Echo ran locally" in repr(panel)


def test_import_krtlab_does_not_import_ipywidgets():
    code = "import sys, krtlab; assert 'ipywidgets' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
