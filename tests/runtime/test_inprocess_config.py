"""Config values in local runs: ``.env`` files, the environment and ``v.config``, delivered to
nodes as environment variables (files as their content), like KRE does."""

import os

import pytest

import krtlab as krt
from krtlab.runtime.config import parse_env_file, resolve_config

PROTO = """
syntax = "proto3";
package entrypoint;
message Request { string key = 1; }
message Response { string value = 1; }
service Entrypoint { rpc Get (Request) returns (Response) {}; }
"""


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KRTLAB_DATA_DIR", str(tmp_path / "data"))
    for key in ("MODE", "CERT", "TOKEN"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def env_reader():
    v = krt.Version("env-v1")
    pb = v.proto(PROTO)

    @v.node
    def read(req: pb.Request) -> pb.Response:
        return pb.Response(value=os.environ.get(req.key, "<unset>"))

    v.workflow("get", entrypoint="Get", sequential=[read])
    v.config("MODE", "TOKEN", files=["CERT"])
    return v


def test_env_file_syntax(tmp_path):
    (tmp_path / "x.env").write_text(
        "# a comment\n"
        "PLAIN=value # trailing comment\n"
        "export EXPORTED=yes\n"
        "  SPACED  =  padded  \n"
        "SINGLE='single # kept'\n"
        'DOUBLE="line one\\nline \\"two\\""\n'
        'MULTI="first\n'
        'second"\n'
        "EMPTY=\n"
        "not a line\n"
        "URL=http://host/#anchor\n"
    )
    assert parse_env_file(tmp_path / "x.env") == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "SPACED": "padded",
        "SINGLE": "single # kept",
        "DOUBLE": 'line one\nline "two"',
        "MULTI": "first\nsecond",
        "EMPTY": "",
        "URL": "http://host/#anchor",
    }
    assert parse_env_file(tmp_path / "missing.env") == {}


def test_priorities_files_and_missing_values(workdir, monkeypatch):
    v = env_reader()
    (workdir / "cert.pem").write_text("-----BEGIN CERT-----\n")
    (workdir / ".env").write_text("MODE=from-dotenv\nCERT=cert.pem\nUNDECLARED=x\n")
    config = resolve_config(v)
    assert config == {"MODE": "from-dotenv", "CERT": "-----BEGIN CERT-----\n"}
    assert config.missing == ["TOKEN"] and config.sources["MODE"].endswith(".env")
    result = v.run("Get", key="CERT")
    assert result.response.value == "-----BEGIN CERT-----\n"  # a FILE is its content
    assert result.warnings == [
        "env-v1: config TOKEN has no value (give it with v.config(TOKEN=...), a .env file or "
        "the environment); KRE would not start the version with incomplete config"
    ]
    assert v.run("Get", key="UNDECLARED").response.value == "<unset>"  # KRE refuses those
    monkeypatch.setenv("MODE", "from-environment")
    assert v.run("Get", key="MODE").response.value == "from-environment"
    v.config(MODE="from-v-config", TOKEN="t")
    result = v.run("Get", key="MODE")
    assert result.response.value == "from-v-config" and not result.warnings
    assert os.environ["MODE"] == "from-environment" and "TOKEN" not in os.environ
