"""``krtlab k8s PATH``: the YAML of the objects KRE would create."""

from __future__ import annotations

import argparse

import pytest
import yaml

import krtlab
from krtlab.deploy import cli_k8s
from krtlab.deploy.k8s import version_objects
from krtlab.errors import BundleError, OverwriteError


def run(argv):
    """Parse and run like ``krtlab`` does (the command is registered there by the lead)."""
    parser = argparse.ArgumentParser(prog="krtlab")
    sub = parser.add_subparsers(dest="command", required=True)
    commands = cli_k8s.register(sub)
    args = parser.parse_args(argv)
    return commands[args.command](args)


def test_prints_the_objects_as_yaml(examples, capsys):
    assert run(["k8s", str(examples / "greeter")]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    manifest = krtlab.load(examples / "greeter").manifest()
    assert docs == version_objects(manifest)
    assert docs[-1]["metadata"]["name"] == "greeter-v1"


def test_writes_a_file_in_the_chosen_form(examples, tmp_path, capsys):
    out = tmp_path / "objects.yaml"
    argv = ["k8s", str(examples / "price-estimator" / "krt.yml"), "--form", "kre3",
            "--published", "--namespace", "prod", "--runtime-id", "rt", "-o", str(out)]  # fmt: skip
    assert run(argv) == 0
    assert "wrote" in capsys.readouterr().out
    docs = list(yaml.safe_load_all(out.read_text()))
    manifest = krtlab.load(examples / "price-estimator").manifest()
    expected = version_objects(
        manifest, form="kre3", published=True, namespace="prod", runtime_id="rt"
    )
    assert docs == expected
    assert docs[-1]["metadata"]["name"] == "rt-active-entrypoint"
    assert {d["metadata"]["namespace"] for d in docs} == {"prod"}


def test_refuses_to_overwrite_without_force(examples, tmp_path):
    out = tmp_path / "objects.yaml"
    out.write_text("mine")
    with pytest.raises(OverwriteError, match="--force"):
        run(["k8s", str(examples / "greeter"), "-o", str(out)])
    assert out.read_text() == "mine"
    assert run(["k8s", str(examples / "greeter"), "-o", str(out), "--force"]) == 0
    assert out.read_text().startswith("---\n")


def test_a_path_that_is_no_project_is_a_krtlab_error(tmp_path):
    with pytest.raises(BundleError):
        run(["k8s", str(tmp_path / "nothing-here")])


def test_through_krtlab_main_when_registered(examples, tmp_path, capsys):
    from krtlab import cli

    if "krtlab.deploy.cli_k8s" not in cli._EXTRA_COMMANDS:
        pytest.skip("krtlab k8s is not registered in krtlab.cli yet")
    out = tmp_path / "o.yaml"
    out.write_text("x")
    assert cli.main(["k8s", str(examples / "greeter"), "-o", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
