"""``krtlab deploy``, ``krtlab versions`` and ``krtlab version ...`` against the KAI Server
stand-in: a round trip with exit codes (0 done, 1 refused, 2 bad usage)."""

from __future__ import annotations

import argparse
import json

import pytest

from krtlab.deploy.cli_deploy import register


def run(argv: list[str]) -> int:
    """What ``krtlab ARGV`` runs once the module is registered in krtlab/cli.py."""
    parser = argparse.ArgumentParser(prog="krtlab")
    commands = register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return commands[args.command](args)


@pytest.fixture(scope="module")
def kai():
    from krtlab.deploy.standin import LocalKai

    with LocalKai(kube=False) as server:
        yield server


@pytest.fixture
def env(kai, monkeypatch):
    monkeypatch.setenv("KAI_SERVER_URL", kai.url)
    monkeypatch.setenv("KAI_API_TOKEN", kai.api_token)
    return kai


def test_missing_server_is_a_usage_error(monkeypatch, capsys):
    monkeypatch.delenv("KAI_SERVER_URL", raising=False)
    monkeypatch.delenv("KAI_API_TOKEN", raising=False)
    assert run(["versions"]) == 2
    assert "pass --server URL or set $KAI_SERVER_URL" in capsys.readouterr().err
    assert run(["versions", "--server", "http://127.0.0.1:9"]) == 2
    assert "$KAI_API_TOKEN" in capsys.readouterr().err


def test_version_actions_need_a_comment(env, capsys):
    with pytest.raises(SystemExit) as info:
        run(["version", "start", "greeter-v1"])
    assert info.value.code == 2


def test_round_trip(env, examples, capsys):
    # deploy: started, not published
    assert run(["deploy", str(examples / "greeter"), "-m", "cli test", "--timeout", "120"]) == 0
    out = capsys.readouterr().out
    assert "uploading greeter-v1" in out and "greeter-v1 is STARTED" in out
    assert "krtlab version publish greeter-v1" in out
    # no --kubeconfig: the pods are not looked at, and the output says KRE does not report them
    assert "node status: not reported by KRE's admin API" in out and "--kubeconfig FILE" in out

    assert run(["versions"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["NAME", "STATUS"]
    assert any(line.split()[:2] == ["greeter-v1", "STARTED"] for line in lines)

    assert run(["version", "publish", "greeter-v1", "-m", "go live"]) == 0
    assert "greeter-v1 is PUBLISHED" in capsys.readouterr().out

    assert run(["versions", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [v["status"] for v in data if v["name"] == "greeter-v1"] == ["PUBLISHED"]

    # KRE stops only STARTED versions: its message, exit 1
    assert run(["version", "stop", "greeter-v1", "-m", "too early"]) == 1
    assert "the version must be started before stopping" in capsys.readouterr().err

    assert run(["version", "unpublish", "greeter-v1", "-m", "back"]) == 0
    assert run(["version", "stop", "greeter-v1", "-m", "done"]) == 0
    assert "greeter-v1 is STOPPED" in capsys.readouterr().out

    # the same version again: refused before the upload, as KRE would, with a free name
    assert run(["deploy", str(examples / "greeter"), "--no-start"]) == 1
    captured = capsys.readouterr()
    assert "error version duplicated" in captured.err
    assert "the next free name is 'greeter-v2'" in captured.err
    assert "uploading" not in captured.out


def test_version_config(env, examples, capsys):
    assert run(["deploy", str(examples / "price-estimator"), "--no-start"]) == 0
    out = capsys.readouterr().out
    assert "start with: krtlab version start price-estimator-v1" in out
    assert run(["version", "config", "price-estimator-v1"]) == 0
    assert "OUTPUT_PRICE_CURRENCY (no value)" in capsys.readouterr().out
    name = "price-estimator-v1"
    assert run(["version", "config", name, "--set", "OUTPUT_PRICE_CURRENCY=EUR"]) == 0
    out = capsys.readouterr().out
    assert "OUTPUT_PRICE_CURRENCY=EUR" in out and "config complete" in out
    assert run(["version", "config", "price-estimator-v1", "--set", "NOPE=1"]) == 1
    assert "version config contains an unknown key" in capsys.readouterr().err
    assert run(["version", "config", "price-estimator-v1", "--set", "oops"]) == 2


def test_wrong_token_and_invalid_project(env, examples, capsys, tmp_path):
    assert run(["versions", "--token", "0" * 64]) == 1
    assert "refused the API token" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "krt.yml").write_text((examples / "greeter" / "krt.yml").read_text()
                                 .replace("src/py-greeter/main.py", "src/nowhere.py"))  # fmt: skip
    (bad / "public_input.proto").write_text((examples / "greeter" / "public_input.proto")
                                            .read_text())  # fmt: skip
    assert run(["deploy", str(bad)]) == 1
    assert "not uploading" in capsys.readouterr().err
