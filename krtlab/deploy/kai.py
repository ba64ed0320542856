"""A client for the KAI Server (KRE) admin API (stdlib ``urllib`` only), reading like the protocol.

The API token is exchanged at ``POST /api/v1/auth/token/signin`` for a JWT sent as
``Authorization: Bearer`` to ``POST /graphql``; ``createVersion`` is a GraphQL multipart upload,
the rest are mutations on the version's name: ``kai.create_version("greeter-v1.krt")``,
``kai.wait("greeter-v1", "CREATED")``, ``kai.start("greeter-v1", "first try")``.

kre >= 5 has runtimes and every call names one (``runtimeId``); kre <= 3 has neither. The client
asks whether ``runtimes`` is a query field and sends ``runtimeId`` only when it is.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from krtlab.errors import AuthError, DeployError, DeployTimeout

__all__ = ["STATUSES", "KaiServer", "NodeInfo", "VersionInfo", "WorkflowInfo"]

# fmt: off
STATUSES = ("CREATING", "CREATED", "STARTING", "STARTED", "PUBLISHED", "STOPPING", "STOPPED",
            "ERROR")
# fmt: on

_VERSION_FIELDS = """id name description status creationDate publicationDate errors
  config { vars { key value type } completed }
  workflows { id name nodes { id name status } }"""

_SIGNIN = "/api/v1/auth/token/signin"


@dataclass(frozen=True)
class NodeInfo:
    """One node of a deployed workflow and its status (STARTING, STARTED, STOPPED, ERROR)."""

    id: str
    name: str
    status: str


@dataclass(frozen=True)
class WorkflowInfo:
    """A deployed workflow with its nodes."""

    id: str
    name: str
    nodes: tuple[NodeInfo, ...] = ()


@dataclass(frozen=True)
class VersionInfo:
    """A version as the KAI Server reports it (``Version`` in the admin API schema)."""

    id: str
    name: str
    description: str
    status: str
    creation_date: str
    publication_date: str | None
    config: dict[str, str]
    config_completed: bool
    errors: tuple[str, ...]
    workflows: tuple[WorkflowInfo, ...] = ()

    @classmethod
    def from_graphql(cls, data: Mapping[str, Any]) -> VersionInfo:
        """Build one from a ``Version`` object of a GraphQL answer."""
        config = data.get("config") or {}
        workflows = tuple(
            WorkflowInfo(str(w.get("id", "")), str(w.get("name", "")), tuple(
                NodeInfo(str(n.get("id", "")), str(n.get("name", "")), str(n.get("status", "")))
                for n in w.get("nodes") or ()))
            for w in data.get("workflows") or ()
        )  # fmt: skip
        return cls(
            str(data.get("id", "")), str(data.get("name", "")), str(data.get("description") or ""),
            str(data.get("status", "")), str(data.get("creationDate") or ""),
            data.get("publicationDate") or None,
            {v["key"]: v.get("value", "") for v in config.get("vars") or ()},
            bool(config.get("completed", False)), tuple(data.get("errors") or ()), workflows,
        )  # fmt: skip

    @property
    def nodes(self) -> dict[str, str]:
        """``"<workflow>/<node>"`` → node status, for every node of every workflow."""
        return {f"{w.name}/{n.name}": n.status for w in self.workflows for n in w.nodes}

    def __str__(self) -> str:
        parts = [f"{self.name} {self.status}"]
        if self.config:
            parts.append("config complete" if self.config_completed else "config incomplete")
        parts.append(f"{len(self.workflows)} workflow{'s' if len(self.workflows) != 1 else ''}")
        if self.publication_date:
            parts.append(f"published {self.publication_date}")
        text = f"{parts[0]} ({', '.join(parts[1:])})"
        if self.errors:
            text += " errors: " + "; ".join(self.errors)
        return text


class KaiServer:
    """The admin API of one KAI Server (KRE), signed in with an API token.

    ``url`` (default ``$KAI_SERVER_URL``) is the admin API base URL, ``api_token`` (default
    ``$KAI_API_TOKEN``) a token created in its UI, ``runtime_id`` the runtime to use (None: the
    only one; kre <= 3 servers have none) and ``timeout`` the seconds per HTTP request.
    DeployError if there is no URL or token.
    """

    def __init__(self, url: str | None = None, *, api_token: str | None = None,
                 runtime_id: str | None = None, timeout: float = 30.0) -> None:  # fmt: skip
        url = url or os.environ.get("KAI_SERVER_URL", "")
        token = api_token or os.environ.get("KAI_API_TOKEN", "")
        if not url:
            raise DeployError("no KAI Server URL: pass url= or set $KAI_SERVER_URL")
        if not token:
            raise DeployError(f"no API token for {url}: pass api_token= or set $KAI_API_TOKEN")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._token = token
        self._jwt: str | None = None
        self._runtime_id = runtime_id
        self._detected = runtime_id is not None  # asked the server about runtimes

    def __repr__(self) -> str:
        runtime = f", runtime_id={self._runtime_id!r}" if self._runtime_id else ""
        return f"KaiServer({self.url!r}{runtime})"

    # -- HTTP and GraphQL ------------------------------------------------------------------------

    def _post(self, path: str, body: bytes, headers: dict[str, str], operation: str) -> Any:
        """POST and decode the JSON answer; HTTP and network failures become DeployError."""
        url = self.url + path
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _http_error(exc, url, operation) from None
        except (urllib.error.URLError, OSError) as exc:
            text = f"cannot reach the KAI Server at {url}: {getattr(exc, 'reason', exc)}"
            raise DeployError(text, operation=operation) from None
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise DeployError(f"{url} answered {raw[:200]!r}", operation=operation) from None

    def sign_in(self) -> str:
        """Exchange the API token for a session JWT (done on first use and on expiry)."""
        body = json.dumps({"apiToken": self._token}).encode()
        data = self._post(_SIGNIN, body, {"Content-Type": "application/json"}, "sign in")
        jwt = data.get("access_token") if isinstance(data, dict) else None
        if not jwt:
            raise AuthError(f"{self.url}{_SIGNIN} gave no access_token", operation="sign in")
        self._jwt = str(jwt)
        return self._jwt

    def graphql(self, query: str, variables: Mapping[str, Any] | None = None, *,
                files: Mapping[str, bytes] | None = None) -> dict[str, Any]:  # fmt: skip
        """Run one GraphQL operation and return its ``data``. ``files`` maps the dotted path of
        an upload variable (``"input.file"``) to its bytes: a graphql-multipart-request-spec
        request (parts ``operations``, ``map``, then the files).

        Raises:
            AuthError: bad token, expired session that could not be renewed, missing permission.
            DeployError: the server answered with GraphQL errors (message, code, details).
        """
        operation = _operation_name(query)
        for attempt in (1, 2):
            if self._jwt is None:
                self.sign_in()
            body, content_type = _encode(query, dict(variables or {}), files)
            headers = {"Content-Type": content_type, "Authorization": f"Bearer {self._jwt}"}
            try:
                answer = self._post("/graphql", body, headers, operation)
            except AuthError as exc:
                # a 401 is an expired or revoked session: sign in again, once
                if exc.status == 401 and attempt == 1:
                    self._jwt = None
                    continue
                raise
            break
        if not isinstance(answer, dict):
            raise DeployError(f"{self.url}/graphql answered {answer!r}", operation=operation)
        if answer.get("errors"):
            raise _graphql_error(answer["errors"], operation)
        return answer.get("data") or {}

    # -- runtimes --------------------------------------------------------------------------------

    @property
    def runtime_id(self) -> str | None:
        """The runtime every call names; None for kre <= 3 servers (asks the server once)."""
        if self._detected:
            return self._runtime_id
        try:
            runtimes = self.graphql("query Runtimes { runtimes { id name } }")["runtimes"]
        except DeployError as exc:
            if isinstance(exc, AuthError) or "runtimes" not in str(exc):
                raise
            runtimes = None  # kre <= 3: one implicit runtime, no runtimeId anywhere
        if runtimes is not None and len(runtimes) != 1:
            ids = ", ".join(r["id"] for r in runtimes) or "none"
            text = f"{self.url} has {len(runtimes)} runtimes ({ids}); pass runtime_id="
            raise DeployError(text, operation="choosing a runtime")
        self._runtime_id, self._detected = runtimes[0]["id"] if runtimes else None, True
        return self._runtime_id

    def runtime(self) -> dict[str, Any]:
        """The runtime's ``id``, ``name``, ``description`` and ``entrypointAddress``."""
        fields = "id name description creationDate entrypointAddress"
        return self._query("runtime", {}, {}, fields, runtime_arg="id")

    def entrypoint_address(self) -> str:
        """Where the runtime serves its PUBLISHED version over gRPC (``host:port``)."""
        return str(self.runtime()["entrypointAddress"])

    # -- versions --------------------------------------------------------------------------------

    def _query(self, field: str, params: dict[str, str], values: dict[str, Any],
               fields: str = _VERSION_FIELDS, runtime_arg: str = "runtimeId") -> Any:  # fmt: skip
        """``query { field(params) { fields } }``, naming the runtime when there is one."""
        if self.runtime_id is not None:
            params = {**params, runtime_arg: "ID!"}
            values = {**values, runtime_arg: self.runtime_id}
        decl = "(" + ", ".join(f"${k}: {t}" for k, t in params.items()) + ")" if params else ""
        args = "(" + ", ".join(f"{k}: ${k}" for k in params) + ")" if params else ""
        query = f"query {field.title()}{decl} {{ {field}{args} {{ {fields} }} }}"
        return self.graphql(query, values)[field]

    def versions(self) -> list[VersionInfo]:
        """Every version of the runtime."""
        return [VersionInfo.from_graphql(v) for v in self._query("versions", {}, {})]

    def version(self, name: str) -> VersionInfo:
        """One version by name (DeployError with the server's message if there is none)."""
        return VersionInfo.from_graphql(self._query("version", {"name": "String!"}, {"name": name}))

    def _mutation(self, field: str, input_type: str, values: dict[str, Any]) -> VersionInfo:
        query = (
            f"mutation {field[0].upper() + field[1:]}($input: {input_type}!) "
            f"{{ {field}(input: $input) {{ {_VERSION_FIELDS} }} }}"
        )
        if self.runtime_id is not None:
            values = {**values, "runtimeId": self.runtime_id}
        files = None
        if "file" in values:  # an upload: the file travels as a multipart part
            files = {"input.file": values.pop("file")}
        data = self.graphql(query, {"input": values}, files=files)
        return VersionInfo.from_graphql(data[field])

    def create_version(self, krt: bytes | str | os.PathLike[str]) -> VersionInfo:
        """Upload a ``.krt`` (its bytes or path). The answer is usually CREATING: KRE checks the
        files asynchronously, so :meth:`wait` for CREATED (or ERROR with ``errors``)."""
        try:
            data = bytes(krt) if isinstance(krt, bytes | bytearray) else Path(krt).read_bytes()
        except OSError as exc:
            raise DeployError(f"cannot read {krt}: {exc.strerror}") from None
        return self._mutation("createVersion", "CreateVersionInput", {"file": data})

    def _action(self, field: str, name: str, comment: str) -> VersionInfo:
        input_type = field[0].upper() + field[1:] + "Input"
        return self._mutation(field, input_type, {"versionName": name, "comment": comment})

    def start(self, name: str, comment: str = "") -> VersionInfo:
        """Start a CREATED or STOPPED version (answers STARTING; wait for STARTED)."""
        return self._action("startVersion", name, comment)

    def stop(self, name: str, comment: str = "") -> VersionInfo:
        """Stop a STARTED version (a published one must be unpublished first)."""
        return self._action("stopVersion", name, comment)

    def publish(self, name: str, comment: str = "") -> VersionInfo:
        """Publish a STARTED version: the runtime's entrypoint then serves it."""
        return self._action("publishVersion", name, comment)

    def unpublish(self, name: str, comment: str = "") -> VersionInfo:
        """Unpublish the PUBLISHED version (back to STARTED)."""
        return self._action("unpublishVersion", name, comment)

    def update_config(self, name: str, values: Mapping[str, str]) -> VersionInfo:
        """Set config values (KRE refuses keys the version does not declare)."""
        pairs = [{"key": k, "value": str(v)} for k, v in values.items()]
        args = {"versionName": name, "configurationVariables": pairs}
        return self._mutation("updateVersionConfiguration", "UpdateConfigurationInput", args)

    def wait(self, name: str, status: str | Iterable[str], *, timeout: float = 600.0,
             interval: float = 0.5) -> VersionInfo:  # fmt: skip
        """Poll until the version reaches ``status`` (one or several) and return it.

        Raises:
            DeployError: it landed in ERROR (unless ERROR was awaited); lists KRE's errors.
            DeployTimeout: ``timeout`` seconds passed; ``last_status`` says where it stayed.
        """
        wanted = {status} if isinstance(status, str) else set(status)
        unknown = wanted - set(STATUSES)
        if unknown:
            raise ValueError(f"unknown status {sorted(unknown)}; KRE has {', '.join(STATUSES)}")
        label = " or ".join(sorted(wanted))
        deadline = time.monotonic() + timeout
        while True:
            info = self.version(name)
            if info.status in wanted:
                return info
            if info.status == "ERROR":
                errors = "\n".join(f"  {e}" for e in info.errors) or "  (no errors given)"
                raise DeployError(f"{name} is in ERROR", code="version_error",
                                  details=f"KRE reported:\n{errors}",
                                  operation=f"waiting for {name} to be {label}")  # fmt: skip
            left = deadline - time.monotonic()
            if left <= 0:
                text = f"{name} is still {info.status} after {timeout:g} s (waiting for {label})"
                raise DeployTimeout(text, last_status=info.status, operation=f"waiting for {name}")
            time.sleep(min(interval, left))
            interval = min(interval * 1.5, 3.0)  # quick first checks, then gentler on the server


# -- encoding and errors ---------------------------------------------------------------------


def _operation_name(query: str) -> str:
    words = query.replace("(", " ").replace("{", " ").split()
    return words[1] if len(words) > 1 and words[0] in ("query", "mutation") else "graphql"


def _encode(query: str, variables: dict[str, Any], files: Mapping[str, bytes] | None,
            ) -> tuple[bytes, str]:  # fmt: skip
    """The request body: JSON, or multipart (operations, map, one part per file) for uploads."""
    if not files:
        return json.dumps({"query": query, "variables": variables}).encode(), "application/json"
    variables = json.loads(json.dumps(variables))  # a copy to put the nulls in
    for path in files:  # the spec: a file's place in the variables holds null
        *parents, leaf = path.split(".")
        target = variables
        for key in parents:
            target = target.setdefault(key, {})
        target[leaf] = None
    mapping = {str(i): [f"variables.{path}"] for i, path in enumerate(files)}
    boundary = "krtlab-" + uuid.uuid4().hex
    ops = json.dumps({"query": query, "variables": variables}).encode()
    parts = [("operations", ops, ""), ("map", json.dumps(mapping).encode(), "")]
    parts += [(str(i), data, "version.krt") for i, data in enumerate(files.values())]
    chunks = []
    for name, data, filename in parts:
        extra = f'; filename="{filename}"' if filename else ""
        kind = "application/octet-stream" if filename else "application/json"
        head = f'Content-Disposition: form-data; name="{name}"{extra}\r\nContent-Type: {kind}'
        chunks += [f"--{boundary}\r\n{head}\r\n\r\n".encode(), data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def _http_error(exc: urllib.error.HTTPError, url: str, operation: str) -> DeployError:
    """KRE's REST errors are ``{"code", "message"}``; a GraphQL body may also come with them."""
    try:
        body = json.loads(exc.read() or b"null")
    except (ValueError, OSError):
        body = None
    if isinstance(body, dict) and body.get("errors"):
        err = _graphql_error(body["errors"], operation, denied=exc.code in (401, 403))
        err.status = exc.code
        return err
    message, code = exc.reason or f"HTTP {exc.code}", ""
    if isinstance(body, dict):
        if isinstance(body.get("message"), dict):  # echo may nest {"code", "message"}
            body = body["message"]
        message = str(body.get("message") or message)
        code = str(body.get("code") or "")
    cls = AuthError if exc.code in (401, 403) else DeployError
    text = f"{url} answered {exc.code}: {message}"
    if exc.code == 401 and operation == "sign in":
        text = f"the KAI Server at {url} refused the API token: {message}"
    return cls(text, code=code, status=exc.code, operation=operation)


def _graphql_error(errors: list[Any], operation: str, *, denied: bool = False) -> DeployError:
    """gqlgen's ``errors`` list → DeployError (AuthError for a missing permission)."""
    first = errors[0] if isinstance(errors[0], dict) else {"message": str(errors[0])}
    message = str(first.get("message", "unknown error"))
    extensions = first.get("extensions") or {}
    code = str(extensions.get("code") or "")
    details = extensions.get("details") or ""
    details = "\n".join(map(str, details)) if isinstance(details, list) else str(details)
    others = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors[1:]]
    details = "\n".join([details, *others]).strip()  # gqlgen may list several errors
    denied = denied or "you are not allowed to" in message.lower()
    denied = denied or code in ("unauthorized", "forbidden", "invalid_session")
    cls = AuthError if denied else DeployError
    return cls(message, code=code, details=details, operation=operation)
