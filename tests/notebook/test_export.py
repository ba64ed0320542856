"""``krtlab export NOTEBOOK.ipynb``: a notebook run headlessly becomes a project and a .krt.

The starters of ``krtlab new`` are exported, loaded back and run in-process: the responses are
those of ``v.run`` inside the notebook (the round trip). Notebooks that define no version, two
versions, an invalid one or fail in a cell give one clear error.
"""

import json

import nbformat
import pytest
from google.protobuf import json_format

import krtlab as krt
from krtlab.cli import main
from krtlab.notebook.export import export_notebook, pick_version, run_notebook
from krtlab.notebook.scaffold import new_project
from tests.support import REPO

GREETER_PROTO = """syntax = "proto3";
package entrypoint;
message Request { string name = 1; }
message Response { string greeting = 1; }
service Entrypoint { rpc PyGreet (Request) returns (Response) {}; }"""

REQUESTS = {
    "greeter": {"PyGreet": {"name": "John"}},
    "price-estimator": {
        "MakePrediction": {
            "neighbourhood": "Manhattan",
            "room_type": "Entire home/apt",
            "accommodates": 3,
            "bedrooms": 2,
            "minimum_nights": 4,
        },
        "SavePredictionMetric": {
            "predicted_price": 210.4,
            "real_price": 199.6,
            "date": "2026-11-25",
        },
    },
}
EXPECTED = {
    "PyGreet": {"greeting": "Hello John!"},
    "MakePrediction": {"price": 206.4, "currency": "EUR"},  # the notebook's local config: EUR
    "SavePredictionMetric": {"saved": True, "message": "metric saved"},
}


def _as_dict(message):
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(s[3:])
        if s.startswith("md:")
        else nbformat.v4.new_code_cell(s)
        for s in sources
    ]
    nbformat.write(nb, path)
    return path


def _greeter_cells(var, name):
    return (
        f'{var} = krt.Version("{name}", description="Greets")\n'
        f"pb_{var} = {var}.proto('''{GREETER_PROTO}''')\n\n"
        f"@{var}.node(name='py-greeter')\n"
        f"def greet_{var}(req: pb_{var}.Request) -> pb_{var}.Response:\n"
        f"    return pb_{var}.Response(greeting='Hi ' + req.name)\n\n"
        f"{var}.workflow('py-greeting', entrypoint='PyGreet', sequential=[greet_{var}])"
    )


@pytest.fixture(autouse=True)
def _local_data(tmp_path, monkeypatch):
    # local runs keep a store; keep it out of the repository (kernels inherit this too)
    monkeypatch.setenv("KRTLAB_DATA_DIR", str(tmp_path / "krtlab-data"))
    monkeypatch.delenv("OUTPUT_PRICE_CURRENCY", raising=False)


# -- the starters, exported and run back ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["greeter", "price-estimator"])
def test_starter_exports_clean_and_round_trips(kind, tmp_path, kernel_manager, monkeypatch, capsys):
    created = new_project(kind, tmp_path / "starter", run=False)
    out, bundle = tmp_path / "out", tmp_path / f"{kind}-v1.krt"
    assert main(["export", str(created.notebook), "-o", str(out), "--krt", str(bundle)]) == 0
    said = capsys.readouterr().out
    assert f"exported {kind}-v1 (v) to {out}" in said and f"built {bundle}" in said
    # the notebook's own export cell (tagged krtlab-export) was skipped: only -o was written
    assert not (tmp_path / "starter" / "project").exists()
    assert main(["validate", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"{kind}-v1: valid, no findings"
    from_krt = krt.load(bundle)
    assert not from_krt.validate().findings
    # the same version as the hand-written template project
    assert krt.load(out).manifest() == krt.load(REPO / "templates" / kind).manifest()
    template_proto = (REPO / "templates" / kind / "public_input.proto").read_text()
    assert (out / "public_input.proto").read_text() == template_proto

    # inside the notebook: every cell runs clean (its export cell too), then v.run per rpc
    probe = (
        "import json\nfrom google.protobuf import json_format\n"
        f"requests = json.loads({json.dumps(json.dumps(REQUESTS[kind]))})\n"
        "print(json.dumps({rpc: json_format.MessageToDict(v.run(rpc, req).response, "
        "preserving_proto_field_name=True) for rpc, req in requests.items()}))"
    )
    nb, extra = run_notebook(
        created.notebook, extra=probe, skip_tag="skip-execution", kernel_manager=kernel_manager
    )
    in_notebook = json.loads(extra.outputs[0]["text"])
    assert in_notebook == {rpc: EXPECTED[rpc] for rpc in REQUESTS[kind]}
    outputs = ["".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
               for o in c.outputs) for c in nb.cells if c.cell_type == "code"]  # fmt: skip
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                if o.output_type == "error"]  # fmt: skip
    assert f"{kind}-v1: valid, no findings" in outputs
    assert sum("ok in" in o for o in outputs) == len(REQUESTS[kind])
    assert outputs[-2].startswith(f"exported {kind}-v1 (v) to project")  # [-1]: the probe

    # loaded back (folder and .krt) and run here: the same responses
    monkeypatch.setenv("OUTPUT_PRICE_CURRENCY", "EUR")  # config values are not in bundles
    for loaded in (krt.load(out), from_krt):
        for rpc, request in REQUESTS[kind].items():
            result = loaded.run(rpc, request)
            assert result.ok, result
            assert _as_dict(result.response) == in_notebook[rpc]


# -- choosing the version ------------------------------------------------------------------------


def test_pick_version_prefers_the_authored_one_and_names_the_candidates():
    a, b = krt.Version("a-v1"), krt.Version("b-v1")
    loaded = krt.load(REPO / "templates" / "greeter")
    assert pick_version({"v": a, "v2": loaded, "_": b, "Out": {1: b}}) == ("v", a)
    assert pick_version({"v": a, "same": a}) == ("v", a)
    with pytest.raises(krt.SpecError) as exc:
        pick_version({"a": a, "b": b, "g": loaded})
    assert str(exc.value) == (
        "the notebook defines 3 versions: a (a-v1); b (b-v1); g (greeter-v1); choose one with "
        "--version NAME (a variable or version name)"
    )
    assert pick_version({"a": a, "b": b}, "b-v1") == ("b", b)
    assert pick_version({"a": a, "b": b}, "a") == ("a", a)
    with pytest.raises(krt.SpecError, match=r"no Version 'c-v1'.*did you mean 'b-v1' or 'a-v1'"):
        pick_version({"a": a, "b": b}, "c-v1")
    with pytest.raises(krt.SpecError, match="defines no krtlab Version"):
        pick_version({"x": 1})


@pytest.mark.slow
def test_no_version_and_two_versions(tmp_path, capsys):
    none = _notebook(tmp_path / "none.ipynb", "import krtlab as krt\nx = 1")
    assert main(["export", str(none), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "krtlab export: the notebook defines no krtlab Version (v = krt.Version(...)); "
        "nothing to export"
    )
    two = _notebook(
        tmp_path / "two.ipynb",
        "import krtlab as krt",
        _greeter_cells("first", "first-v1"),
        _greeter_cells("second", "second-v1"),
    )
    assert main(["export", str(two), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "defines 2 versions: first (first-v1); second (second-v1)" in err
    assert "--version NAME" in err and not (tmp_path / "out").exists()
    assert main(["export", str(two), "-o", str(tmp_path / "out"), "--version", "second"]) == 0
    assert krt.load(tmp_path / "out").name == "second-v1"


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_failing_cell_is_named_with_its_exception_line(tmp_path, capsys):
    nb = _notebook(
        tmp_path / "broken.ipynb",
        "import krtlab as krt",
        "md:Some prose.",
        "x = 1\ny = undefined_name + x",
        "print('never runs')",
    )
    assert main(["export", str(nb), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "krtlab export: broken.ipynb: cell 3 (In [2]) failed",
        "NameError: name 'undefined_name' is not defined",
        "  line 2: y = undefined_name + x",
    ]


@pytest.mark.slow
def test_a_failing_magic_cell_shows_its_own_message(tmp_path, kernel_manager):
    bad = GREETER_PROTO.replace("= 1; }", "= 1 }", 1)
    nb = _notebook(
        tmp_path / "proto.ipynb",
        '%load_ext krtlab\nimport krtlab as krt\nv = krt.Version("p-v1", description="p")',
        f"%%krt_proto v\n{bad}",
    )
    with pytest.raises(krt.BundleError) as exc:
        export_notebook(nb, tmp_path / "out", kernel_manager=kernel_manager)
    assert str(exc.value).splitlines() == [
        "proto.ipynb: cell 2 (In [2]) failed",
        "ProtoError: public_input.proto does not compile",
        'cell line 4, column 35: Expected ";".',
        "  4 | message Request { string name = 1 }",
        "    |                                   ^",
    ]


@pytest.mark.slow
def test_validation_errors_print_the_report_and_write_nothing(tmp_path, capsys):
    nb = _notebook(
        tmp_path / "invalid.ipynb",
        'import krtlab as krt\nv = krt.Version("bad-v1", description="x")',
    )
    out, bundle = tmp_path / "out", tmp_path / "bad.krt"
    assert main(["export", str(nb), "-o", str(out), "--krt", str(bundle)]) == 1
    err = capsys.readouterr().err
    # the cell that made the version first, krt.yml second
    assert err.startswith("bad-v1: 3 errors, 0 warnings\nerror: cell In[1], line 2 (krt.yml:4 ")
    assert err.rstrip().endswith(f"krtlab export: not writing {out}")
    assert not out.exists() and not bundle.exists()


def test_not_a_notebook(tmp_path, capsys):
    (tmp_path / "x.py").write_text("print(1)\n")
    assert main(["export", str(tmp_path / "x.py"), "-o", str(tmp_path / "out")]) == 2
    assert "is not a notebook file (.ipynb)" in capsys.readouterr().err


@pytest.mark.slow
def test_force_replaces_hand_edits_and_foreign_krt(tmp_path, capsys):
    nb = _notebook(tmp_path / "g.ipynb", "import krtlab as krt", _greeter_cells("v", "greeter-v1"))
    out, bundle = tmp_path / "out", tmp_path / "g.krt"
    bundle.write_bytes(b"not a build")  # someone else's file: refused without --force
    args = ["export", str(nb), "-o", str(out), "--krt", str(bundle)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{bundle} exists and is not a build of 'greeter-v1'" in err
    assert not out.exists(), "a refusal writes nothing, the folder included"
    assert main([*args, "--force"]) == 0
    capsys.readouterr()
    (out / "krt.yml").write_text((out / "krt.yml").read_text() + "# edited\n")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "written or edited by hand" in err and "krt.yml" in err
    assert main([*args, "--force"]) == 0
    assert "# edited" not in (out / "krt.yml").read_text()
    assert krt.load(bundle).validate().ok
