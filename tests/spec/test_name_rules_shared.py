"""KRE's naming rules live in one module (:mod:`krtlab.spec.rules`): authoring, krt.yml
validation, the CLI and the KRE stand-in all refuse a name through it, with the same limit."""

from __future__ import annotations

from pathlib import Path

import pytest

import krtlab as krt
from krtlab.bundle.archive import write_krt
from krtlab.deploy.standin.krt_check import KrtValidationError, check_sync
from krtlab.errors import SpecError
from krtlab.spec import names, rules
from tests.test_validate_rules import GREETER_YML, greeter


def _paths(name: str, tmp_path: Path) -> dict[str, str | None]:
    """What each path says about ``name`` as a version name: None when it accepts it."""
    out: dict[str, str | None] = {}
    try:
        krt.Version(name, description="d")
        out["authoring"] = None
    except SpecError as exc:
        out["authoring"] = str(exc)
    project = greeter(GREETER_YML.replace("version: greeter-v1", f"version: {name}"))
    found = [f for f in project.validate().findings if f.path == "version"]
    out["validation"] = found[0].message if found else None
    path = write_krt(project.files, tmp_path / f"{len(name)}.krt")
    try:
        check_sync(path.read_bytes())
        out["stand-in"] = None
    except KrtValidationError as exc:
        out["stand-in"] = exc.details
    out["rules"] = rules.check_resource_name(name)
    return out


def test_every_path_takes_the_limit_from_rules(tmp_path: Path) -> None:
    limit = rules.MAX_NAME_LENGTH
    assert limit == rules.KRE_NAME_LT - 1 == 19
    at_limit, over = "a" * limit, "a" * (limit + 1)
    assert set(_paths(at_limit, tmp_path).values()) == {None}
    said = _paths(over, tmp_path)
    assert all(said.values()), said
    assert f"is {limit + 1} characters long; KRE allows at most {limit}" in said["authoring"]
    assert f"is {limit + 1} characters long; KRE allows at most {limit}" in said["validation"]
    assert f"must be lower than {rules.KRE_NAME_LT}" in said["stand-in"]


def test_changing_the_one_limit_moves_every_path(tmp_path: Path, monkeypatch) -> None:
    # one constant: a change (or a mutant) in rules.py is seen by authoring and validation alike
    monkeypatch.setattr(rules, "MAX_NAME_LENGTH", 12)
    said = _paths("a" * 13, tmp_path)
    assert all(said.values()), said
    assert "KRE allows at most 12" in said["authoring"]
    assert "KRE allows at most 12" in said["validation"]
    assert set(_paths("a" * 12, tmp_path).values()) == {None}


def test_the_resource_name_regex_is_one_pattern(monkeypatch) -> None:
    # version names embed the same resource-name fragment KRE's validator regex is built from
    assert rules.RESOURCE_NAME_RE.pattern == f"^{rules.RESOURCE_NAME}$"
    assert rules.RESOURCE_NAME in names._NAME_RE.pattern
    assert str(rules.KRE_NAME_LT) in names._LIMIT


@pytest.mark.parametrize("name", ["greeter-v1\n", "Greeter", "-greeter", "greeter-", "a_b"])
def test_names_kre_refuses_are_refused_everywhere(name: str, tmp_path: Path) -> None:
    # Go's `$` does not match before a trailing newline: a quoted "greeter-v1\n" is refused
    assert rules.name_problem(name) == "resource-name"
    with pytest.raises(SpecError, match="must contain only lowercase letters"):
        krt.Version(name, description="d")
    quoted = name.replace("\n", "\\n")
    project = greeter(GREETER_YML.replace("version: greeter-v1", f'version: "{quoted}"'))
    (f,) = [f for f in project.validate().findings if f.path == "version"]
    assert f.code == "name.invalid"
    path = write_krt(project.files, tmp_path / "v.krt")
    with pytest.raises(KrtValidationError) as info:
        check_sync(path.read_bytes())
    assert 'Invalid resource name "' in info.value.details
    assert rules.RESOURCE_NAME_HELP in info.value.details


def test_config_variable_names_are_matched_whole() -> None:
    assert rules.check_env_var("GREETING") is None
    assert rules.check_env_var("GREETING\n") is not None
    assert rules.check_env_var("GREETING_") is not None
    assert names.split_version_name("greeter-v1\n") is None
    assert names.split_version_name("greeter-v1") is not None
