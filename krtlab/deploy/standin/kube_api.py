"""A Kubernetes API stand-in the official ``kubernetes`` Python client can talk to.

A stdlib :class:`~http.server.ThreadingHTTPServer` on ``127.0.0.1:<free port>`` serving the
subset of the API that KRE's k8s-manager and :class:`krtlab.deploy.kube.Cluster` use:

- discovery: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/apps``, ``/apis/apps/v1``;
- core/v1 ``services``, ``configmaps``, ``pods`` and apps/v1 ``deployments``: list (per
  namespace or across all, ``labelSelector``, ``fieldSelector`` on name/namespace), get,
  create (POST), replace (PUT) and delete;
- a bearer token: every request without it gets 401 Unauthorized.

Errors are the API server's ``Status`` objects, so the client raises ``ApiException`` with the
same status, reason and body it would get from a real cluster::

    with KubeApiServer() as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        ...  # kubernetes.config.new_client_from_config(str(kubeconfig))
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from os import PathLike
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .kube_store import RESOURCES, KubeApiError, KubeStore, Resource

__all__ = ["KubeApiError", "KubeApiServer", "KubeStore"]

_GIT_VERSION = "v1.29.0-krtlab"
# /api/v1/namespaces/<ns>/<plural>[/<name>], /apis/apps/v1/... and the all-namespaces lists
_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[a-z0-9.]+)/v1)"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+))?/?$"
)
# (group, plural) of each served resource; so /apis/apps/v1/services is not a thing
_SERVED = {(r.group, r.plural): r for r in RESOURCES.values()}
_NO_RESOURCE = "the server could not find the requested resource"
_NOT_ALLOWED = "the server does not allow this method on the requested resource"
# Which deletes answer with the deleted object (services, pods) or a Success Status
_DELETE_RETURNS_OBJECT = {"services", "pods"}


def _resource_list(group_version: str, resources: list[Resource]) -> dict[str, Any]:
    verbs = ["create", "delete", "get", "list", "update"]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [
            {"name": r.plural, "singularName": r.kind.lower(), "namespaced": True,
             "kind": r.kind, "verbs": verbs}
            for r in resources
        ],
    }  # fmt: skip


def _discovery(path: str, address: str) -> dict[str, Any] | None:
    core = [r for r in RESOURCES.values() if not r.group]
    apps = [r for r in RESOURCES.values() if r.group == "apps"]
    group = {
        "name": "apps",
        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
    }
    answers: dict[str, dict[str, Any]] = {
        "/version": {
            "major": "1", "minor": "29", "gitVersion": _GIT_VERSION,
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.21", "compiler": "gc",
            "platform": "linux/amd64",
        },
        "/api": {
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
        },
        "/api/v1": _resource_list("v1", core),
        "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]},
        "/apis/apps": {"kind": "APIGroup", "apiVersion": "v1", **group},
        "/apis/apps/v1": _resource_list("apps/v1", apps),
    }  # fmt: skip
    return answers.get(path.rstrip("/") or "/")


def _object(kind: str, api_version: str, metadata: dict, **rest: Any) -> dict[str, Any]:
    return {"kind": kind, "apiVersion": api_version, "metadata": metadata, **rest}


def _deleted(res: Resource, gone: dict[str, Any]) -> dict[str, Any]:
    """What DELETE answers: the object itself for services and pods, else a Success Status."""
    if res.plural in _DELETE_RETURNS_OBJECT:
        return gone
    details: dict[str, Any] = {"name": gone["metadata"]["name"]}
    if res.group:
        details["group"] = res.group
    details.update(kind=res.plural, uid=gone["metadata"]["uid"])
    return _object("Status", "v1", {}, status="Success", details=details)


def _field_filter(items: list[dict], selector: str) -> list[dict]:
    for part in filter(None, (p.strip() for p in selector.split(","))):
        key, sep, value = part.partition("==") if "==" in part else part.partition("=")
        negate = key.endswith("!")
        key = key.rstrip("!").strip()
        if not sep or key not in ("metadata.name", "metadata.namespace"):
            known = '"metadata.name", "metadata.namespace"'
            raise KubeApiError.bad_request(f'"{key}" is not a known field selector: only {known}')
        field = key.split(".")[1]
        items = [o for o in items if (o["metadata"].get(field) == value.strip()) != negate]
    return items


class _Handler(BaseHTTPRequestHandler):
    server_version = "krtlab-kube-api"
    protocol_version = "HTTP/1.1"  # keep-alive, as urllib3's pool expects
    api: KubeApiServer  # set on the per-server subclass
    _raw: bytes = b""

    def setup(self) -> None:
        super().setup()
        # headers and body go out as two writes: without NODELAY, Nagle plus delayed ACKs add
        # ~40 ms to every call on a kept-alive connection
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests run many calls
        pass

    def _send(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        try:
            body = json.loads(self._raw or b"null")
        except ValueError as exc:
            raise KubeApiError.bad_request(f"the request body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise KubeApiError.bad_request("the request body must be a JSON object")
        return body

    def _handle(self, method: str) -> None:
        # read any body first, even for refused calls, so the kept-alive connection stays in sync
        length = int(self.headers.get("Content-Length") or 0)
        self._raw = self.rfile.read(length) if length else b""
        try:
            self._authorize()
            code, body = self._route(method)
        except KubeApiError as exc:
            code, body = exc.status, exc.payload
        self._send(code, body)

    def _authorize(self) -> None:
        if self.headers.get("Authorization", "") != f"Bearer {self.api.token}":
            # the real server adds no details to a 401
            raise KubeApiError(401, "Unauthorized", "Unauthorized")

    def _route(self, method: str) -> tuple[int, dict[str, Any]]:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if method == "GET":
            found = _discovery(url.path, f"127.0.0.1:{self.api.port}")
            if found is not None:
                return 200, found
        m = _PATH.match(url.path)
        res = m and _SERVED.get((m.group("group") or "", m.group("plural")))
        if not m or res is None:
            raise KubeApiError(404, "NotFound", _NO_RESOURCE, {})
        if query.get("watch") in ("true", "1"):
            # a watch answers a stream of events; a plain list would mislead the client
            raise KubeApiError.bad_request("watch is not supported by krtlab's API stand-in")
        ns, name = m.group("ns"), m.group("name")
        store = self.api.store
        if name is None and method == "GET":
            items = store.list(res.plural, ns, query.get("labelSelector", ""))
            items = _field_filter(items, query.get("fieldSelector", ""))
            for item in items:  # list items carry no kind/apiVersion, as from a real server
                item.pop("kind", None)
                item.pop("apiVersion", None)
            meta = {"resourceVersion": store.resource_version}
            return 200, _object(f"{res.kind}List", res.api_version, meta, items=items)
        if ns is not None and name is None and method == "POST":
            return 201, store.create(self._with_namespace(res, ns, None))
        if ns is not None and name is not None:
            if method == "GET":
                return 200, store.get(res.plural, ns, name)
            if method == "PUT":
                return 200, store.replace(self._with_namespace(res, ns, name))
            if method == "DELETE":
                return 200, _deleted(res, store.delete(res.plural, ns, name))
        raise KubeApiError(405, "MethodNotAllowed", _NOT_ALLOWED, {})

    def _with_namespace(self, res: Resource, ns: str, name: str | None) -> dict[str, Any]:
        """The request body with the URL's kind and namespace (the client may omit both)."""
        obj = self._body()
        obj["kind"] = obj.get("kind") or res.kind
        if obj["kind"] != res.kind:
            raise KubeApiError.bad_request(
                f"the kind of the provided object ({obj['kind']}) does not match the URL "
                f"({res.kind})"
            )
        meta = obj.setdefault("metadata", {})
        if meta.get("namespace") and meta["namespace"] != ns:
            raise KubeApiError.bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        meta["namespace"] = ns
        if name is not None and meta.get("name") and meta["name"] != name:
            raise KubeApiError.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL "
                f"({name})"
            )
        return obj

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")  # a DeleteOptions body is read and ignored

    def do_PATCH(self) -> None:
        self._handle("PATCH")  # not served: 405


class KubeApiServer:
    """The stand-in API server: :class:`KubeStore` behind HTTP with bearer token auth.

    ``token`` defaults to a random one; :meth:`write_kubeconfig` writes a kubeconfig with it.
    """

    def __init__(self, store: KubeStore | None = None, *, token: str | None = None) -> None:
        self.store = store if store is not None else KubeStore()
        self.token = token or secrets.token_urlsafe(24)
        self.port = 0
        self.url = ""
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> KubeApiServer:
        """Listen on a free port of 127.0.0.1 and serve in a daemon thread."""
        if self._httpd is not None:
            return self
        handler = type("KubeApiHandler", (_Handler,), {"api": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns at once
            name="krtlab-kube-api",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> KubeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def write_kubeconfig(self, path: str | PathLike[str], *, namespace: str = "kre") -> Path:
        """Write a kubeconfig (JSON, which is YAML) pointing at this server with its token."""
        if not self.url:
            raise RuntimeError("start the KubeApiServer before writing its kubeconfig")
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "krtlab", "cluster": {"server": self.url}}],
            "users": [{"name": "krtlab", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "krtlab",
                    "context": {"cluster": "krtlab", "user": "krtlab", "namespace": namespace},
                }
            ],
            "current-context": "krtlab",
            "preferences": {},
        }
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return target
