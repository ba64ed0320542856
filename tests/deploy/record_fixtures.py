"""Record the admin API wire format of :class:`~krtlab.deploy.kai.KaiServer` as JSON fixtures.

    python -m tests.deploy.record_fixtures

runs :class:`~krtlab.deploy.standin.LocalKai` in KRE 7 mode, calls the client once per scenario
(each operation, sign-in, KRE's refusals) through a recording transport, and writes one file per
scenario to ``tests/deploy/fixtures/kai_wire/``: the requests the client sent (path, headers,
the JSON body or the multipart parts, line by line) and the answers it got, and what the client
made of them (``returns`` or ``raises``). ``test_kai_wire_fixtures.py`` replays them through
``KaiServer(transport=...)`` and fails on any byte the client sends differently.

Secrets and what changes from run to run are replaced, so a re-recording only differs where the
wire does: the server's URL is ``http://kai.test``, the API tokens ``API-TOKEN`` and
``VIEWER-TOKEN``, the session JWTs ``JWT-1``..., the multipart boundary ``BOUNDARY``, the
uploaded ``.krt`` ``<call.args[0]>`` (its bytes are in ``call``), dates and version ids fixed.

Re-record (and read the diff: every changed line is a change of the wire format) when the client's
requests change on purpose (a query's fields or variables, the multipart layout, sign-in), when
its parsing of answers changes on purpose, or when the stand-in's answers change because KRE's
behaviour is modelled more closely. Do not re-record to make the replay test pass without
knowing why it failed: a failure there means the client now speaks differently to KRE.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import io
import json
import logging
import re
import sys
import tarfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from krtlab.deploy.kai import KaiServer, urllib_transport
from krtlab.errors import DeployError

FIXTURES = Path(__file__).parent / "fixtures" / "kai_wire"
BASE = "http://kai.test"
BOUNDARY = "BOUNDARY"

Exchange = dict[str, Any]


# -- what one request and one answer look like in a fixture ------------------------------------


def describe_request(method: str, url: str, headers: Mapping[str, str], body: bytes,
                     files: Sequence[bytes] = ()) -> dict[str, Any]:  # fmt: skip
    """A request as a fixture holds it: a JSON body parsed, a multipart body as its lines with
    the boundary as ``BOUNDARY`` and each uploaded file (``files``, the call's bytes arguments)
    as ``<call.args[i]>``."""
    if not url.startswith(BASE):
        raise AssertionError(f"request to {url}, not to {BASE}")
    out: dict[str, Any] = {"method": method, "path": url[len(BASE) :], "headers": dict(headers)}
    ctype = str(headers.get("Content-Type", ""))
    if ctype.startswith("multipart/form-data; boundary="):
        boundary = ctype.split("boundary=", 1)[1]
        out["headers"]["Content-Type"] = ctype.replace(boundary, BOUNDARY)
        for i, data in enumerate(files):
            body = body.replace(data, f"<call.args[{i}]>".encode())
        out["multipart"] = body.decode().replace(boundary, BOUNDARY).split("\r\n")
    else:
        out["json"] = json.loads(body)
    return out


def request_body(request: Mapping[str, Any]) -> bytes | None:
    """The exact bytes of a fixture's JSON request body (None for a multipart one)."""
    return json.dumps(request["json"]).encode() if "json" in request else None


def describe_response(status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    return {"status": status, "headers": {"Content-Type": ctype}, "json": json.loads(body)}


def response_body(response: Mapping[str, Any]) -> bytes:
    return json.dumps(response["json"]).encode()


# -- calls and what they give -------------------------------------------------------------------


def encode_args(args: Sequence[Any]) -> list[Any]:
    return [{"bytes_base64": base64.b64encode(a).decode()} if isinstance(a, bytes) else a
            for a in args]  # fmt: skip


def decode_args(args: Sequence[Any]) -> list[Any]:
    return [base64.b64decode(a["bytes_base64"]) if isinstance(a, dict) and "bytes_base64" in a
            else a for a in args]  # fmt: skip


def plain(value: Any) -> Any:
    """A call's result as JSON (dataclasses as dicts named by ``type``)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {"type": type(value).__name__, **dataclasses.asdict(value)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return json.loads(json.dumps(value))


def outcome(call: Callable[[], Any]) -> dict[str, Any]:
    """``{"returns": ...}`` or ``{"raises": ...}`` (a DeployError's fields and text)."""
    try:
        return {"returns": plain(call())}
    except DeployError as exc:
        fields = ("message", "code", "details", "status", "operation")
        return {"raises": {"type": type(exc).__name__, **{f: getattr(exc, f) for f in fields},
                           "text": str(exc)}}  # fmt: skip


class Replay:
    """A transport answering from a fixture's exchanges, in order, after checking that each
    request is exactly the recorded one."""

    def __init__(self, fixture: Mapping[str, Any]) -> None:
        self.name = fixture.get("name", "fixture")
        self.exchanges = list(fixture["exchanges"])
        self.files = [a for a in decode_args(fixture["call"]["args"]) if isinstance(a, bytes)]
        self.used = 0

    def __call__(self, method: str, url: str, headers: Mapping[str, str], body: bytes
                 ) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        n = self.used
        if n >= len(self.exchanges):
            got = describe_request(method, url, headers, body, self.files)
            raise AssertionError(f"{self.name}: request {n + 1} was not recorded:\n{got}")
        expected = self.exchanges[n]["request"]
        got = describe_request(method, url, headers, body, self.files)
        if got != expected:
            raise AssertionError(
                f"{self.name}: request {n + 1} differs from the recorded one\n"
                f"sent:     {json.dumps(got, indent=1)}\nrecorded: {json.dumps(expected, indent=1)}"
            )
        exact = request_body(expected)
        if exact is not None and body != exact:
            raise AssertionError(f"{self.name}: request {n + 1} has the recorded JSON but other "
                                 f"bytes:\nsent:     {body!r}\nrecorded: {exact!r}")  # fmt: skip
        self.used += 1
        response = self.exchanges[n]["response"]
        return response["status"], dict(response["headers"]), response_body(response)


def client_for(fixture: Mapping[str, Any], transport: Any) -> KaiServer:
    """The client a fixture was recorded with (its URL, token, runtime and session)."""
    settings = fixture["client"]
    client = KaiServer(BASE, api_token=settings["api_token"], runtime_id=settings["runtime_id"],
                       transport=transport)  # fmt: skip
    client._jwt = settings.get("jwt")  # a session from before the call (an expired one)
    return client


def run(fixture: Mapping[str, Any], transport: Any) -> dict[str, Any]:
    """Make the fixture's call on a client using ``transport``; its outcome."""
    client = client_for(fixture, transport)
    call = fixture["call"]
    return outcome(lambda: getattr(client, call["method"])(*decode_args(call["args"])))


# -- recording ----------------------------------------------------------------------------------

_DATE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
_VERSION_ID = re.compile(r'"id": "([0-9a-f]{24})"')


class Recorder:
    """Records one scenario per :meth:`record` against a running LocalKai."""

    def __init__(self, kai: Any, out: Path = FIXTURES) -> None:
        self.kai, self.out = kai, out
        self.names = {kai.url: BASE, kai.entrypoint_address: "127.0.0.1:10000"}
        self.jwts: dict[str, str] = {}
        self.ids: dict[str, str] = {}
        self.written: list[Path] = []

    def token(self, real: str, placeholder: str) -> str:
        self.names[real] = placeholder
        return real

    def record(self, name: str, about: str, method: str, *args: Any, api_token: str = "",
               runtime_id: str | None = "local", jwt: str | None = None
               ) -> dict[str, Any]:  # fmt: skip
        raw: list[tuple[tuple, tuple]] = []
        files = [a for a in args if isinstance(a, bytes)]
        self.jwts = {}  # numbered per fixture: JWT-1 is the session its client signs in to

        def recording(method: str, url: str, headers: Mapping[str, str], body: bytes) -> Any:
            answer = urllib_transport(method, url, headers, body)
            raw.append(((method, url, dict(headers), body), answer))
            return answer

        client = KaiServer(self.kai.url, api_token=api_token or self.kai.api_token,
                           runtime_id=runtime_id, transport=recording)  # fmt: skip
        client._jwt = jwt
        live = outcome(lambda: getattr(client, method)(*args))
        exchanges = []
        for (m, url, headers, body), (status, rheaders, rbody) in raw:
            request = describe_request(m, url.replace(self.kai.url, BASE), headers, body, files)
            exchanges.append({"request": request,
                              "response": describe_response(status, rheaders, rbody)})  # fmt: skip
        fixture = {
            "name": name,
            "about": about,
            "client": {
                "api_token": api_token or self.kai.api_token,
                "runtime_id": runtime_id,
                "jwt": jwt,
            },
            "call": {"method": method, "args": encode_args(args)},
            "exchanges": exchanges,
        }
        fixture = self._scrub(fixture)
        replay = Replay(fixture)
        fixture.update(run(fixture, replay))  # what the client makes of the scrubbed answers
        if replay.used != len(exchanges):
            raise AssertionError(f"{name}: the replay made {replay.used} of {len(exchanges)} "
                                 "requests")  # fmt: skip
        if ("raises" in fixture) != ("raises" in live):
            raise AssertionError(f"{name}: live {live} but replayed {fixture}")
        path = self.out / f"{name}.json"
        path.write_text(json.dumps(fixture, indent=2, ensure_ascii=False) + "\n")
        self.written.append(path)
        return fixture

    def _scrub(self, fixture: dict[str, Any]) -> dict[str, Any]:
        for exchange in fixture["exchanges"]:
            answer = exchange["response"]["json"]
            jwt = answer.get("access_token") if isinstance(answer, dict) else None
            if jwt and jwt not in self.jwts:
                self.jwts[jwt] = f"JWT-{len(self.jwts) + 1}"
        text = json.dumps(fixture)
        for real, placeholder in [*self.names.items(), *self.jwts.items()]:
            text = text.replace(real, placeholder)
        text = _DATE.sub("2024-06-03T10:00:00Z", text)

        def version_id(m: re.Match[str]) -> str:
            fake = self.ids.setdefault(m[1], f"{len(self.ids) + 1:024x}")
            return f'"id": "{fake}"'

        return json.loads(_VERSION_ID.sub(version_id, text))


# -- the scenarios ------------------------------------------------------------------------------


def small_krt(name: str) -> bytes:
    """A small .krt with one config variable (``GREETING``), the same bytes every time (no
    dates in the tar or gzip headers). Its handler is a plain function: KRE-like serving fails
    fast and nothing is left running, while KRE (and the stand-in) still report STARTED."""
    manifest = f"""version: {name}
description: recorded for the wire fixtures
entrypoint:
  proto: public_input.proto
  image: konstellation/kre-entrypoint:1.7.1
config:
  variables:
    - GREETING
nodes:
  - name: py-greeter
    image: konstellation/kre-py:1.23.0
    src: src/py-greeter/main.py
workflows:
  - name: py-greeting
    entrypoint: PyGreet
    sequential: [py-greeter]
""".encode()
    files = {
        "krt.yml": manifest,
        "public_input.proto": PROTO,
        "src/py-greeter/main.py": b"def handler(ctx, data):\n    return data\n",
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for d in ("src", "src/py-greeter"):  # directory entries, as KRE needs them
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(out.getvalue(), mtime=0)


PROTO = b"""syntax = "proto3";
package entrypoint;
message Request { string name = 1; }
message Response { string greeting = 1; }
service Entrypoint { rpc PyGreet (Request) returns (Response) {}; }
"""


START = "mutation StartVersion($input: StartVersionInput!) { startVersion(input: $input) { name } }"


def record_all(out: Path = FIXTURES) -> list[Path]:
    """Record every scenario (in KRE 7 mode) into ``out``; returns the files written."""
    from krtlab.deploy.standin import LocalKai

    logging.getLogger("krtlab.standin.kai").setLevel(logging.ERROR)  # "did not start": expected
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.json"):
        old.unlink()
    with LocalKai(kre="7", kube=False) as kai:
        rec = Recorder(kai, out)
        rec.token(kai.api_token, "API-TOKEN")
        viewer = rec.token(kai.add_user("viewer@krtlab.local", "VIEWER"), "VIEWER-TOKEN")
        plain_client = KaiServer(kai.url, api_token=kai.api_token)
        krt = small_krt("greeter-v1")

        rec.record("sign_in", "the API token exchanged for a session JWT", "sign_in")
        rec.record("sign_in_refused", "a wrong API token: 401 from the REST sign-in",
                   "versions", api_token="WRONG-TOKEN")  # fmt: skip
        rec.record("runtime", "no runtime_id given: the client asks for the runtimes (KRE 7 "
                   "has them, one here) and names it from then on", "runtime",
                   runtime_id=None)  # fmt: skip
        rec.record("create_version", "a .krt uploaded: GraphQL multipart request (operations, "
                   "map, the file)", "create_version", krt)  # fmt: skip
        plain_client.wait("greeter-v1", "CREATED", timeout=60)
        rec.record("versions", "every version of the runtime", "versions")
        rec.record("version", "one version by name (config incomplete)", "version", "greeter-v1")
        rec.record("update_config", "config values set", "update_config", "greeter-v1",
                   {"GREETING": "Hello"})  # fmt: skip
        rec.record("start", "start a CREATED version", "start", "greeter-v1", "first try")
        plain_client.wait("greeter-v1", "STARTED", timeout=120)
        rec.record("publish", "publish a STARTED version", "publish", "greeter-v1", "go live")
        rec.record("unpublish", "unpublish it", "unpublish", "greeter-v1", "back")
        rec.record("stop", "stop a STARTED version", "stop", "greeter-v1", "done")
        plain_client.wait("greeter-v1", "STOPPED", timeout=60)

        rec.record(
            "error_version_not_found",
            "a resolver error (message, path); the client lists the versions for a did-you-mean",
            "start",
            "greeter-v9",
            "go",
        )
        rec.record("error_version_duplicated", "the same name uploaded again; the client asks "
                   "the version's status", "create_version", krt)  # fmt: skip
        rec.record("error_krt_validation", "KRE's krt.yml check: extensions.code and "
                   "extensions.details", "create_version", small_krt("Bad_Name"))  # fmt: skip
        rec.record("error_wrong_status", "publish refused in status STOPPED; the client asks "
                   "the status", "publish", "greeter-v1", "again")  # fmt: skip
        rec.record("error_unknown_config_key", "an undeclared config key; the client compares "
                   "with the declared ones", "update_config", "greeter-v1",
                   {"GREETNG": "Hi"})  # fmt: skip
        rec.record("error_variable_refused", "variables that do not fit the schema: 422, "
                   "GRAPHQL_VALIDATION_FAILED with a path", "graphql", START,
                   {"input": {"versionName": "greeter-v1", "comment": "c"}})  # fmt: skip
        rec.record("error_document_refused", "a document the schema refuses: 422, "
                   "GRAPHQL_VALIDATION_FAILED with locations", "graphql",
                   "query Versions { versions { name } }")  # fmt: skip
        rec.record("error_forbidden", "a VIEWER may not create versions (casbin's refusal)",
                   "create_version", small_krt("viewer-v1"), api_token=viewer)  # fmt: skip
        rec.record("session_expired", "a session KRE no longer accepts: 401 from /graphql, "
                   "sign in again and retry once", "versions", jwt="EXPIRED-JWT")  # fmt: skip
        return rec.written


def main() -> int:
    written = record_all()
    for path in written:
        print(path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
