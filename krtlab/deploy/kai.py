"""A client for the KAI Server (KRE) admin API (stdlib ``urllib`` only), reading like the protocol.

The API token is exchanged at ``POST /api/v1/auth/token/signin`` for a JWT sent as
``Authorization: Bearer`` to ``POST /graphql``; ``createVersion`` is a GraphQL multipart upload,
the rest are mutations on the version's name: ``kai.create_version("greeter-v1.krt")``,
``kai.wait("greeter-v1", "CREATED")``, ``kai.start("greeter-v1", "first try")``.

kre >= 5 has runtimes and every call names one (``runtimeId``); kre <= 3 has neither. The client
asks whether ``runtimes`` is a query field and sends ``runtimeId`` only when it is.

HTTP goes through a *transport*, ``(method, url, headers, body) -> (status, headers, body)``:
:func:`urllib_transport` unless ``KaiServer(..., transport=)`` gives another (a test's fake
server, a proxy, a recorder). It answers every HTTP status (errors included) and raises
``OSError`` when there is no answer.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from krtlab.errors import AuthError, DeployError, DeployTimeout
from krtlab.spec.suggest import did_you_mean

from . import kai_wire as wire

__all__ = [
    "STATUSES",
    "KaiServer",
    "NodeInfo",
    "Transport",
    "VersionInfo",
    "WorkflowInfo",
    "urllib_transport",
]

# fmt: off
STATUSES = ("CREATING", "CREATED", "STARTING", "STARTED", "PUBLISHED", "STOPPING", "STOPPED",
            "ERROR")
# fmt: on

_VERSION_FIELDS = """id name description status creationDate publicationDate errors
  config { vars { key value type } completed }
  workflows { id name nodes { id name status } }"""

_SIGNIN = "/api/v1/auth/token/signin"

Transport = Callable[[str, str, Mapping[str, str], bytes], tuple[int, Mapping[str, str], bytes]]
"""``(method, url, headers, body) -> (status, headers, body)``: one HTTP exchange."""


def urllib_transport(method: str, url: str, headers: Mapping[str, str], body: bytes, *,
                     timeout: float = 60.0) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    """The default transport (stdlib ``urllib``): any HTTP answer, error statuses included, is
    returned; no answer at all (refused, timed out, DNS) raises ``OSError``."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        try:
            data = exc.read()
        except (OSError, AttributeError, ValueError):  # an error without a body
            data = b""
        return exc.code, dict(exc.headers.items()) if exc.headers else {}, data
    except urllib.error.URLError as exc:
        reason = exc.reason if isinstance(exc.reason, OSError) else OSError(str(exc.reason))
        raise reason from None


@dataclass(frozen=True)
class NodeInfo:
    """One node of a deployed workflow.

    ``status`` is what the ``version`` query answered: KRE 7 computes node statuses from
    Kubernetes and sends them only through the ``watchNodeStatus`` subscription, so queries
    give ``""`` (unknown). :meth:`krtlab.deploy.kube.Cluster.node_health` reads the pods instead.
    """

    id: str
    name: str
    status: str

    @property
    def status_known(self) -> bool:
        """Whether the server reported a status (KRE 7's queries never do)."""
        return bool(self.status)


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
        """``"<workflow>/<node>"`` → node status as reported (``""``: unknown, see
        :class:`NodeInfo`), for every node of every workflow."""
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
    only one; kre <= 3 servers have none) and ``timeout`` the seconds per HTTP request (60:
    updating a started version's config answers only once KRE restarted its pods, which it
    allows ~50 s) and ``transport`` what sends them (default :func:`urllib_transport`; see
    :data:`Transport`). DeployError if there is no URL or token.
    """

    def __init__(self, url: str | None = None, *, api_token: str | None = None,
                 runtime_id: str | None = None, timeout: float = 60.0,
                 transport: Transport | None = None) -> None:  # fmt: skip
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
        self._transport = transport

    def __repr__(self) -> str:
        runtime = f", runtime_id={self._runtime_id!r}" if self._runtime_id else ""
        return f"KaiServer({self.url!r}{runtime})"

    # -- HTTP and GraphQL ------------------------------------------------------------------------

    def _post(self, path: str, body: bytes, headers: dict[str, str], operation: str) -> Any:
        """POST and decode the JSON answer; HTTP and network failures become DeployError."""
        url = self.url + path
        answer: tuple[int, Mapping[str, str], bytes]
        try:
            if self._transport is None:
                answer = urllib_transport("POST", url, headers, body, timeout=self.timeout)
            else:
                answer = self._transport("POST", url, headers, body)
        except OSError as exc:
            text = f"cannot reach the KAI Server at {url}: {exc}"
            raise DeployError(text, operation=operation) from None
        status, _headers, raw = answer
        if status >= 400:
            raise wire.http_error(status, raw, url, operation)
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
        operation = wire.operation_name(query)
        for attempt in (1, 2):
            if self._jwt is None:
                self.sign_in()
            body, content_type = wire.encode(query, dict(variables or {}), files)
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
            raise wire.graphql_error(answer["errors"], operation)
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
        """The runtime's ``entrypointAddress`` exactly as the server gives it: where its
        PUBLISHED version is served over gRPC.

        KRE 7 answers ``entrypoint.<baseDomain>``, a bare Ingress host (no port: gRPC over TLS
        on 443); the stand-in answers ``127.0.0.1:<port>`` (plaintext). Pass it to
        :func:`krtlab.runtime.client.call` or see :func:`~krtlab.runtime.client.
        resolve_address` for the ``host:port`` and TLS choice.
        """
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
        try:
            data = self._query("version", {"name": "String!"}, {"name": name})
        except DeployError as exc:
            raise self._explain(exc, name) from None
        return VersionInfo.from_graphql(data)

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
        try:
            data = self.graphql(query, {"input": values}, files=files)
        except DeployError as exc:
            name = values.get("versionName") or (
                files and wire.krt_version_name(files["input.file"])
            )
            raise self._explain(exc, name or None, values) from None
        return VersionInfo.from_graphql(data[field])

    def _explain(self, exc: DeployError, name: str | None, values: Mapping[str, Any] | None = None
                 ) -> DeployError:  # fmt: skip
        """KRE's terse ``message`` kept, with ``details`` saying what to do. Asking the server
        for the context may fail too: then the original error is given as it was."""
        msg = exc.message
        if isinstance(exc, AuthError) or not name:
            return exc
        try:
            if "error version not found" in msg:
                names = [v.name for v in self.versions()]
                hint = did_you_mean(name, names)
                shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
                details = f"no version {name!r} on {self.url}; " + (
                    hint or f"it has: {shown or 'none'}"
                )
            elif "error version duplicated" in msg:
                status = self.version(name).status
                details = (
                    f"a version named {name!r} is already on the server (status {status}): "
                    f"attach with Deployment({name!r}, server) or change the version name"
                )
            elif "unknown key" in msg:
                details = wire.undeclared_keys(name, values or {}, self.version(name).config)
            elif "the version must be" in msg:  # refused in its current status
                details = wire.wrong_status(msg, self.version(name).status)
            else:
                return exc
        except DeployError:
            return exc
        return wire.explained(exc, details) if details else exc

    def create_version(self, krt: bytes | str | os.PathLike[str]) -> VersionInfo:
        """Upload a ``.krt`` (its bytes or path). The answer is usually CREATING: KRE checks the
        files asynchronously, so :meth:`wait` for CREATED (or ERROR with ``errors``)."""
        if isinstance(krt, bytes | bytearray):
            data = bytes(krt)
        else:
            try:
                data = Path(krt).read_bytes()
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
