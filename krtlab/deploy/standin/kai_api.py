"""The admin API's HTTP side: token sign-in, bearer JWT and ``POST /graphql`` (JSON or multipart).

Mirrors KRE 7's echo server: ``POST /api/v1/auth/token/signin`` answers
``{"access_token": "<JWT>"}``; ``/graphql`` without a valid bearer answers 401
``{"code":"unauthorized","message":"Unauthorized"}`` (an inactive session: ``invalid_session``);
uploads follow the GraphQL multipart request spec with gqlgen's 500 MB limit.
"""

from __future__ import annotations

import json
import logging
import threading
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from krtlab.deploy.standin.auth import Auth

if TYPE_CHECKING:
    from krtlab.deploy.standin.gql import GraphQLApi

__all__ = ["MAX_UPLOAD", "KaiHttpServer"]

MAX_UPLOAD = 500 * (1 << 20)  # gqlgen MultipartForm MaxUploadSize in KRE's http_handler.go
_MESSAGES = {
    "unauthorized": "Unauthorized",
    "invalid_session": "The session is not valid",
    "invalid_json": "Invalid JSON",
}
_log = logging.getLogger("krtlab.standin.kai")


def _set_path(target: dict[str, Any], path: str, value: Any) -> None:
    parts: list[Any] = path.split(".")
    node: Any = target
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


class _Handler(BaseHTTPRequestHandler):
    server: KaiHttpServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("kai http: " + format, *args)

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str) -> None:
        self._send(status, {"code": code, "message": _MESSAGES.get(code, code)})

    def _body(self, limit: int | None = None) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if limit is not None and length > limit:
            self.close_connection = True  # do not read 500 MB just to refuse it
            return None
        return self.rfile.read(length)

    def do_GET(self) -> None:
        self._error(404, "not_found") if self.path != "/graphql" else self._error(405, "method")

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/api/v1/auth/token/signin":
            self._sign_in()
        elif path == "/graphql":
            self._graphql()
        else:
            self._send(404, {"message": "Not Found"})

    def _sign_in(self) -> None:
        try:
            payload = json.loads(self._body() or b"null")
        except ValueError:
            return self._error(400, "invalid_json")
        token = payload.get("apiToken") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            return self._send(
                400, {"code": "validation_error", "message": "The field APIToken is required"}
            )
        jwt = self.server.auth.sign_in(token)
        if jwt is None:
            return self._error(401, "unauthorized")
        self._send(200, {"access_token": jwt})

    def _graphql(self) -> None:
        user, code = self.server.auth.check(self.headers.get("Authorization", ""))
        if user is None:
            return self._error(401, code)
        ctype = self.headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            body = self._body(MAX_UPLOAD)
            if body is None:
                return self._gql_error("failed to parse multipart form, request body too large")
            try:
                request = self._multipart(ctype, body)
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                return self._gql_error(f"failed to parse multipart form: {exc}")
        else:
            try:
                request = json.loads(self._body() or b"null")
                assert isinstance(request, dict)
                assert isinstance(request.get("variables") or {}, dict)
            except (ValueError, AssertionError) as exc:
                text = f"json body could not be decoded: {exc or 'not a request object'}"
                return self._gql_error(text, 400)  # gqlgen's POST transport: 400
        assert self.server.schema is not None
        status, result = self.server.schema.execute(
            str(request.get("query") or ""),
            request.get("variables") or {},
            request.get("operationName") or None,
            context=user,
        )
        self._send(status, result)

    def _gql_error(self, message: str, status: int = 422) -> None:
        self._send(status, {"errors": [{"message": message}], "data": None})

    @staticmethod
    def _multipart(ctype: str, body: bytes) -> dict[str, Any]:
        msg = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {ctype}\r\n\r\n".encode() + body)
        parts: dict[str, bytes] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            parts[str(name)] = payload if isinstance(payload, bytes) else b""
        operations = json.loads(parts["operations"])
        for key, paths in json.loads(parts.get("map", b"{}")).items():
            if key not in parts:
                raise ValueError(f"file {key!r} is missing")
            for p in paths:
                _set_path(operations, p, parts[key])
        return operations


class KaiHttpServer(ThreadingHTTPServer):
    """The admin API on ``127.0.0.1:<free port>``; :meth:`start` serves in a thread."""

    daemon_threads = True

    def __init__(self, schema: GraphQLApi | None, auth: Auth, host: str = "127.0.0.1") -> None:
        super().__init__((host, 0), _Handler)
        self.schema, self.auth = schema, auth
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> KaiHttpServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True, name="kai-http")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(5)
