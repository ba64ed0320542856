"""``krtlab new KIND DIR``: a starter notebook plus its project, never over existing files."""

import nbformat
import pytest

import krtlab as krt
from krtlab.cli import main
from krtlab.notebook.scaffold import STARTERS, new_project, templates_dir
from tests.support import REPO


@pytest.fixture(autouse=True)
def _local_data(tmp_path, monkeypatch):
    monkeypatch.setenv("KRTLAB_DATA_DIR", str(tmp_path / "krtlab-data"))


def test_templates_are_found_in_the_repository(monkeypatch):
    monkeypatch.delenv("KRTLAB_TEMPLATES", raising=False)
    assert templates_dir() == REPO / "templates"
    monkeypatch.setenv("KRTLAB_TEMPLATES", "/nowhere")
    with pytest.raises(krt.BundleError, match=r"templates were not found.*KRTLAB_TEMPLATES"):
        templates_dir()


def test_starter_notebooks_are_committed_without_outputs():
    for starter in STARTERS.values():
        nb = nbformat.read(REPO / "templates" / "notebooks" / starter.notebook, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(not c.outputs and c.execution_count is None for c in code)
        assert code[0].source.startswith("%load_ext krtlab")
        assert any(c.source.startswith("%%krt_proto v") for c in code)
        # exactly one export cell, tagged so that `krtlab export` skips it
        exports = [c for c in code if "%krt_export" in c.source]
        assert len(exports) == 1 and exports[0].metadata["tags"] == ["krtlab-export"]
        assert f"--krt {starter.krt}" in exports[0].source


def test_new_without_running_writes_the_notebook_and_its_inputs(tmp_path, capsys):
    dest = tmp_path / "pe"
    assert main(["new", "price-estimator", str(dest), "--no-run"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"created {dest / 'price-estimator.ipynb'}",
        f"created {dest / 'models' / 'coefficients.json'}",
        "run the notebook (or krtlab export) to write project/",
    ]
    template = REPO / "templates"
    assert (dest / "price-estimator.ipynb").read_bytes() == (
        template / "notebooks" / "price-estimator.ipynb"
    ).read_bytes()
    assert (dest / "models" / "coefficients.json").read_bytes() == (
        template / "price-estimator" / "models" / "coefficients.json"
    ).read_bytes()
    assert not (dest / "project").exists()


def test_new_refuses_to_overwrite_and_lists_the_files(tmp_path, capsys):
    dest = tmp_path / "pe"
    new_project("price-estimator", dest, run=False)
    (dest / "project" / "src").mkdir(parents=True)
    (dest / "project" / "src" / "mine.py").write_text("# mine\n")
    (dest / "models" / "coefficients.json").write_text("{}")
    assert main(["new", "price-estimator", str(dest), "--no-run"]) == 2
    err = capsys.readouterr().err
    assert f"not creating the price-estimator starter in {dest}: these files exist:" in err
    for path in ("price-estimator.ipynb", "models/coefficients.json", "project/src/mine.py"):
        assert f"  {dest / path}\n" in err
    assert "--force" in err
    assert (dest / "models" / "coefficients.json").read_text() == "{}"
    assert main(["new", "price-estimator", str(dest), "--no-run", "--force"]) == 0
    assert (dest / "models" / "coefficients.json").read_text() != "{}"


def test_unknown_kind(tmp_path, capsys):
    with pytest.raises(krt.SpecError, match=r"no starter 'greter'; did you mean 'greeter'\?"):
        new_project("greter", tmp_path)
    with pytest.raises(SystemExit):
        main(["new", "greter", str(tmp_path)])
    assert "invalid choice: 'greter'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(STARTERS))
def test_new_runs_the_starter_and_exports_its_project(kind, tmp_path, capsys):
    dest = tmp_path / kind
    assert main(["new", kind, str(dest)]) == 0
    said = capsys.readouterr().out
    assert f"exported {kind}-v1 (v) to {dest / 'project'}" in said
    assert f"built {dest / f'{kind}-v1.krt'}" in said
    project = krt.load(dest / "project")
    assert not project.validate().findings
    assert project.manifest() == krt.load(REPO / "templates" / kind).manifest()
    assert krt.load(dest / f"{kind}-v1.krt").manifest() == project.manifest()
    # the notebook runs again over its own export: krtlab wrote those files, nothing to refuse
    assert main(["new", kind, str(dest)]) == 2, "but `new` itself never replaces files"
    assert main(["new", kind, str(dest), "--force"]) == 0
