"""Every case in shared/examples/invalid/cases.yaml is refused at the location it names."""

from __future__ import annotations

import pytest
import yaml

from krtlab.bundle.load import load_project
from krtlab.bundle.project import Project
from krtlab.cli import main
from krtlab.spec.yamlsrc import dump_krt_yml

from .conftest import EXAMPLES

CASES = yaml.safe_load((EXAMPLES / "invalid" / "cases.yaml").read_text())


def _project(case) -> Project:
    # "Cases are laid over the greeter example (same proto and sources)".
    files = dict(load_project(EXAMPLES / "greeter").files)
    files["krt.yml"] = dump_krt_yml(case["krt"]).encode()
    return Project(files, case["name"])


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case_is_refused_where_it_says(case):
    report = _project(case).validate()
    assert not report.ok
    located = [f for f in report.errors if f.path == case["where"]]
    assert located, f"no error at {case['where']}: {report}"
    finding = located[0]
    assert finding.file == "krt.yml" and finding.line, finding
    if case["kre"] and finding.code != "key.unknown":
        # KRE refuses it too: krtlab quotes KRE's own wording, saying which KRE
        assert finding.kre and finding.kre.startswith(("KRE 7: ", "KRE 8: ", "kli: ")), finding


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_cli_validate_exits_1_and_names_the_location(case, tmp_path, capsys):
    project = _project(case)
    for rel, data in project.files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    assert main(["validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert case["where"] in out
    assert "Traceback" not in out
    assert main(["build", str(tmp_path), "-o", str(tmp_path / "x.krt")]) == 1
    assert not (tmp_path / "x.krt").exists()
