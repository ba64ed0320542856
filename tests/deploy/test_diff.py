"""``krtlab deploy --kubeconfig`` (waiting for the pods) and ``d.diff()`` / ``krtlab diff``
against the KAI Server stand-in and its Kubernetes API: real processes, no mocks.

One LocalKai for the module (processes are expensive on 2 shared cores): greeter-v1 is deployed
by the CLI with a kubeconfig, price-estimator-v1 by ``deploy()`` with a cluster; the diff
tests change local copies of them.
"""

from __future__ import annotations

import argparse
import json
import shutil

import pytest

import krtlab
from krtlab.deploy.deployment import Deployment, deploy
from krtlab.deploy.diff import Change, diff_version, looks_secret
from krtlab.deploy.kai import KaiServer
from krtlab.errors import DeployError


def run(argv: list[str]) -> int:
    """What ``krtlab ARGV`` runs (the commands of krtlab.deploy.cli_deploy)."""
    from krtlab.deploy.cli_deploy import register

    parser = argparse.ArgumentParser(prog="krtlab")
    commands = register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return commands[args.command](args)


@pytest.fixture(scope="module")
def kai():
    from krtlab.deploy.standin import LocalKai

    with LocalKai() as server:
        yield server


@pytest.fixture(scope="module")
def server(kai) -> KaiServer:
    return KaiServer(kai.url, api_token=kai.api_token)


@pytest.fixture
def env(kai, monkeypatch):
    monkeypatch.setenv("KAI_SERVER_URL", kai.url)
    monkeypatch.setenv("KAI_API_TOKEN", kai.api_token)
    return kai


@pytest.fixture(scope="module")
def greeter(kai, examples) -> str:
    """greeter-v1, deployed once by ``krtlab deploy --kubeconfig`` (output kept for the test)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(["deploy", str(examples / "greeter"), "--server", kai.url, "--token",
                    kai.api_token, "--kubeconfig", str(kai.kubeconfig), "-m", "diff tests",
                    "--timeout", "120"])  # fmt: skip
    assert code == 0, err.getvalue()
    return out.getvalue()


@pytest.fixture(scope="module")
def price(kai, server, examples) -> Deployment:
    """price-estimator-v1 started with OUTPUT_PRICE_CURRENCY=GBP, its pods read in the cluster."""
    return deploy(examples / "price-estimator", server, config={"OUTPUT_PRICE_CURRENCY": "GBP"},
                  cluster=kai.kubeconfig, timeout=120)  # fmt: skip


# -- krtlab deploy --kubeconfig --------------------------------------------------------------------


def test_deploy_with_kubeconfig_waits_for_the_pods_and_shows_their_health(greeter):
    lines = greeter.splitlines()
    waiting = lines.index("waiting for the pods of greeter-v1 to run")
    running = lines.index("greeter-v1's pods are running")
    # progress as the pods change, between the two
    assert "  py-greeter: Running" in lines[waiting:running]
    assert "  entrypoint: Running" in lines[waiting:running]
    # the final status card: node health read from the pods, not "not reported"
    card = lines[running + 1 :]
    assert card[0] == "greeter-v1 STARTED"
    assert any(line.split() == ["workflow", "py-greeting", "(PyGreet)", "py-greeter", "Running"]
               for line in card)  # fmt: skip
    assert any(line.split() == ["entrypoint", "pod", "Running"] for line in card)
    assert "not reported" not in greeter
    assert lines[-1] == "publish with: krtlab version publish greeter-v1 -m '...'"


def test_deploy_with_kubeconfig_names_a_crash_looping_node(kai, server, examples, tmp_path,
                                                            capsys):  # fmt: skip
    project = tmp_path / "broken"
    shutil.copytree(examples / "greeter", project)
    yml = project / "krt.yml"
    yml.write_text(yml.read_text().replace("greeter-v1", "broken-v1"))
    main = project / "src" / "py-greeter" / "main.py"
    main.write_text(main.read_text().replace(
        "def init(ctx):", "def init(ctx):\n    raise RuntimeError('no model')\n"))  # fmt: skip
    args = ["deploy", str(project), "--server", kai.url, "--token", kai.api_token,
            "--kubeconfig", str(kai.kubeconfig), "--timeout", "120"]  # fmt: skip
    try:
        assert run(args) == 1
        captured = capsys.readouterr()
        assert "waiting for the pods of broken-v1 to run" in captured.out
        assert "  py-greeter: CrashLoopBackOff:" in captured.out  # seen as it happened
        assert "broken-v1 is STARTED but node(s) py-greeter are failing" in captured.err
        assert "py-greeter: CrashLoopBackOff:" in captured.err
        assert "kubectl logs -n kre" in captured.err
    finally:
        Deployment("broken-v1", server).stop()


def test_deploy_with_a_bad_kubeconfig_is_bad_usage(env, server, examples, tmp_path, capsys):
    # refused before anything is uploaded
    before = [v.name for v in server.versions()]
    missing = tmp_path / "nowhere.yaml"
    assert run(["deploy", str(examples / "greeter"), "--kubeconfig", str(missing)]) == 2
    assert f"kubeconfig {str(missing)!r} does not exist" in capsys.readouterr().err
    assert run(["deploy", str(examples / "greeter"), "--context", "prod"]) == 2
    assert "--context needs --kubeconfig FILE" in capsys.readouterr().err
    assert [v.name for v in server.versions()] == before


# -- krtlab diff -----------------------------------------------------------------------------------


def test_diff_is_identical_after_deploy(env, greeter, examples, kai, capsys):
    assert run(["diff", str(examples / "greeter")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("diff greeter-v1 vs greeter-v1 STARTED on ")
    assert "no differences in what could be compared" in out
    # what the admin API cannot tell is said, not silently taken as equal
    assert "node images, src and gpu, workflow entrypoints (rpc) and the entrypoint image: " \
           "the admin API does not report them" in out  # fmt: skip
    assert "node source code, protos, assets and docs: KRE's admin API does not give the .krt " \
           "back" in out  # fmt: skip
    # with the cluster, the Deployments tell them: still identical, and now compared
    assert run(["diff", str(examples / "greeter"), "--kubeconfig", str(kai.kubeconfig)]) == 0
    out = capsys.readouterr().out
    assert "node images, src and gpu, workflow entrypoints, entrypoint image" in out
    assert "entrypoint image: the admin API does not report them" not in out
    assert "read from the version's Deployments" in out
    assert run(["diff", str(examples / "greeter"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["same"] is True and data["changes"] == []
    assert data["local"] == data["deployed"] == "greeter-v1"


def test_diff_after_a_local_change_names_exactly_that(env, greeter, examples, kai, tmp_path,
                                                      capsys):  # fmt: skip
    project = tmp_path / "greeter"
    shutil.copytree(examples / "greeter", project)
    yml = project / "krt.yml"
    yml.write_text(yml.read_text().replace("kre-py:1.23.0", "kre-py:1.24.0"))
    # the admin API does not report images: without the cluster this cannot be seen
    assert run(["diff", str(project)]) == 0
    capsys.readouterr()
    assert run(["diff", str(project), "--kubeconfig", str(kai.kubeconfig), "--json"]) == 1
    changes = json.loads(capsys.readouterr().out)["changes"]
    assert [c["text"] for c in changes] == [
        "~ node py-greeter image: local konstellation/kre-py:1.24.0, deployed "
        "konstellation/kre-py:1.23.0"
    ]


def test_diff_of_an_unknown_version_exits_2_with_did_you_mean(env, greeter, examples, capsys):
    assert run(["diff", str(examples / "greeter"), "--version", "greeter-v9"]) == 2
    err = capsys.readouterr().err
    assert "no version 'greeter-v9' on" in err and "nothing to compare with" in err
    assert "did you mean 'greeter-v1'?" in err
    # the local version's own name, not on the server
    assert run(["diff", str(examples / "price-estimator"), "--server", env.url, "--version",
                "price-estimator-v9"]) == 2  # fmt: skip
    assert "no version 'price-estimator-v9'" in capsys.readouterr().err


def test_diff_cannot_compare_without_a_server_or_a_project(monkeypatch, examples, tmp_path,
                                                           capsys):  # fmt: skip
    monkeypatch.delenv("KAI_SERVER_URL", raising=False)
    assert run(["diff", str(examples / "greeter")]) == 2
    assert "pass --server URL or set $KAI_SERVER_URL" in capsys.readouterr().err
    monkeypatch.setenv("KAI_SERVER_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("KAI_API_TOKEN", "t")
    assert run(["diff", str(tmp_path / "nothing-here")]) == 2


# -- d.diff() --------------------------------------------------------------------------------------


def test_deployment_diff_names_each_local_change(kai, server, price, examples):
    def local():
        return krtlab.load(examples / "price-estimator")

    assert price.diff().same  # the version it was deployed from
    # a node's image (read from its Deployments: the admin API has no field for it)
    v = local()
    v.nodes["model"].image = "konstellation/kre-py:1.24.0"
    assert price.diff(v).changes == [Change("~", "node", "model", "image",
                                            "konstellation/kre-py:1.24.0",
                                            "konstellation/kre-py:1.23.0")]  # fmt: skip
    # a new workflow
    v = local()
    v.workflow("metrics-again", entrypoint="SavePredictionMetric", sequential=["save-metric"])
    result = price.diff(v)
    assert result.changes == [Change("+", "workflow", "metrics-again",
                                     local="SavePredictionMetric: save-metric")]  # fmt: skip
    assert str(result.changes[0]) == (
        "+ workflow metrics-again: only local (SavePredictionMetric: save-metric)"
    )
    # a config value given in the notebook against the deployed one
    v = local()
    v.config(OUTPUT_PRICE_CURRENCY="EUR")
    result = price.diff(v)
    assert result.changes == [Change("~", "config value", "OUTPUT_PRICE_CURRENCY", "", "'EUR'",
                                     "'GBP'")]  # fmt: skip
    assert "~ config value OUTPUT_PRICE_CURRENCY: local 'EUR', deployed 'GBP'" in repr(result)
    html = result._repr_html_()
    assert "1 difference" in html and "OUTPUT_PRICE_CURRENCY" in html and "#b00" in html
    # no value in the notebook: the server's is kept by deploy, so it is not a difference
    plain = price.diff(local())
    assert plain.same
    assert any("values only on the server" in n and "OUTPUT_PRICE_CURRENCY" in n
               for n in plain.notes)  # fmt: skip
    # a workflow's nodes: "model" is then in no workflow, so KRE would not deploy it
    v = local()
    v.workflow("ny-room-price", entrypoint="MakePrediction", sequential=["etl", "output"])
    result = price.diff(v)
    assert result.changes == [
        Change("~", "workflow", "ny-room-price", "nodes", "etl -> output",
               "etl -> model -> output"),
        Change("-", "node", "model"),
    ]  # fmt: skip
    assert any("used by no workflow" in n and n.endswith(": model") for n in result.notes)


def test_diff_hides_secret_and_file_values(kai, server, examples, tmp_path):
    project = tmp_path / "secrets"
    shutil.copytree(examples / "greeter", project)
    yml = project / "krt.yml"
    yml.write_text(yml.read_text().replace("greeter-v1", "secrets-v1").replace(
        "nodes:", "config:\n  variables:\n    - API_TOKEN\n    - GREETING\n  files:\n"
        "    - MODEL_CONF\nnodes:", 1))  # fmt: skip
    deployed = {"API_TOKEN": "deployed-s3cret", "GREETING": "Hello", "MODEL_CONF": "depth: 1\n"}
    dep = deploy(project, server, config=deployed, start=False, cluster=kai.kubeconfig,
                 timeout=120)  # fmt: skip
    v = krtlab.load(project)
    v.config(API_TOKEN="local-s3cret", GREETING="Hello", MODEL_CONF="depth: 2\n")
    result = dep.diff(v)
    assert [(c.sign, c.area, c.name) for c in result.changes] == [
        ("~", "config value", "API_TOKEN"), ("~", "config value", "MODEL_CONF"),
    ]  # fmt: skip
    assert result.changes[0].local == result.changes[0].deployed == "(hidden)"
    assert result.changes[1].local.startswith("<file: 9 bytes, sha256 ")
    shown = repr(result) + json.dumps(result.to_dict()) + result._repr_html_()
    for value in ("s3cret", "depth: 1", "depth: 2"):
        assert value not in shown
    assert any("API_TOKEN are never shown: the keys look secret" in n for n in result.notes)
    assert any("FILE values are shown as their size and a hash" in n for n in result.notes)
    # CREATED: no Deployments to read images from, and the diff says why
    assert any("secrets-v1 is CREATED and has no Deployments in namespace 'kre'" in t
               for t in result.not_compared)  # fmt: skip
    # a VIEWER token: KRE shows no config at all, so it cannot be compared (not "removed")
    viewer = KaiServer(kai.url, api_token=kai.add_user("viewer@krtlab.local", "VIEWER"))
    seen = diff_version(v, viewer)
    assert seen.same
    assert any("VIEWER access" in t for t in seen.not_compared)


def test_diff_needs_a_local_version(server, greeter):
    with pytest.raises(DeployError, match="no local version to compare greeter-v1 with"):
        Deployment("greeter-v1", server).diff()


def test_looks_secret():
    assert looks_secret("API_TOKEN") and looks_secret("db_password") and looks_secret("AWS_KEY")
    assert not looks_secret("OUTPUT_PRICE_CURRENCY")
