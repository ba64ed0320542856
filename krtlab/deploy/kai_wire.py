"""The admin API's wire format: request bodies (JSON or GraphQL multipart) and error decoding.

Also :func:`krt_version_name` (the version a ``.krt`` declares) and :func:`explained`, which
adds krtlab's context to one of KRE's terse messages without hiding it.
"""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from krtlab.bundle.archive import krt_yml_tarinfo
from krtlab.errors import AuthError, DeployError
from krtlab.spec.suggest import did_you_mean


def operation_name(query: str) -> str:
    words = query.replace("(", " ").replace("{", " ").split()
    return words[1] if len(words) > 1 and words[0] in ("query", "mutation") else "graphql"


def encode(query: str, variables: dict[str, Any], files: Mapping[str, bytes] | None,
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


def http_error(status: int, body: bytes, url: str, operation: str) -> DeployError:
    """An HTTP error answer (``status`` >= 400) → DeployError (AuthError for 401/403). KRE's REST
    errors are ``{"code", "message"}``; a GraphQL body may also come with them."""
    try:
        answer = json.loads(body or b"null")
    except ValueError:
        answer = None
    if isinstance(answer, dict) and answer.get("errors"):
        err = graphql_error(answer["errors"], operation, denied=status in (401, 403))
        err.status = status
        return err
    message, code = _reason(status), ""
    if isinstance(answer, dict):
        if isinstance(answer.get("message"), dict):  # echo may nest {"code", "message"}
            answer = answer["message"]
        message = str(answer.get("message") or message)
        code = str(answer.get("code") or "")
    cls = AuthError if status in (401, 403) else DeployError
    text = f"{url} answered {status}: {message}"
    if status == 401 and operation == "sign in":
        text = f"the KAI Server at {url} refused the API token: {message}"
    return cls(text, code=code, status=status, operation=operation)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def graphql_error(errors: list[Any], operation: str, *, denied: bool = False) -> DeployError:
    """gqlgen's ``errors`` list → DeployError (AuthError for a missing permission)."""
    first: dict[str, Any] = (
        errors[0] if isinstance(errors[0], dict) else {"message": str(errors[0])}
    )
    message = str(first.get("message", "unknown error"))
    extensions = first.get("extensions") or {}
    code = str(extensions.get("code") or "")
    details = extensions.get("details") or ""
    details = "\n".join(map(str, details)) if isinstance(details, list) else str(details)
    others = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors[1:]]
    path = first.get("path") or []
    if path and path[0] == "variable":  # gqlparser's "must be defined" says what only by its path
        details = "\n".join(x for x in (f"at {'.'.join(map(str, path))}", details) if x)
    details = "\n".join([details, *others]).strip()  # gqlgen may list several errors
    denied = denied or "you are not allowed to" in message.lower()
    denied = denied or code in ("unauthorized", "forbidden", "invalid_session")
    cls = AuthError if denied else DeployError
    return cls(message, code=code, details=details, operation=operation)


def explained(exc: DeployError, details: str) -> DeployError:
    """``exc`` with ``details`` (KRE's ``message``, ``code`` and ``operation`` kept)."""
    both = "\n".join(d for d in (exc.details, details) if d)
    cls = type(exc) if type(exc) in (DeployError, AuthError) else DeployError
    out = cls(exc.message, code=exc.code, details=both, status=exc.status,
                    operation=exc.operation)  # fmt: skip
    return out


def krt_version_name(data: bytes) -> str | None:
    """The ``version`` a ``.krt``'s ``krt.yml`` declares, or None if it cannot be read."""
    import yaml

    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            first = krt_yml_tarinfo(tar)  # the one KRE reads
            if first is None or not first.isfile():
                return None
            handle = tar.extractfile(first)
            doc = yaml.safe_load(handle.read()) if handle else None
    except (tarfile.TarError, OSError, EOFError, yaml.YAMLError):
        return None
    name = doc.get("version") if isinstance(doc, dict) else None
    return str(name) if name else None


def undeclared_keys(name: str, values: Mapping[str, Any], declared: Mapping[str, str]) -> str:
    """Which sent keys the version does not declare, each with a did-you-mean."""
    sent = [v["key"] for v in values.get("configurationVariables") or ()]
    parts = []
    for key in (k for k in sent if k not in declared):
        hint = did_you_mean(key, declared)
        parts.append(f"{key!r} ({hint})" if hint else repr(key))
    keys = ", ".join(sorted(declared)) or "none"
    return f"{name} does not declare {', '.join(parts) or 'some key sent'}; it declares: {keys}"


def wrong_status(message: str, status: str) -> str:
    """What to do when KRE refuses an action in the version's current status."""
    if "started before stopping" in message:
        return "it is PUBLISHED: unpublish() first" if status == "PUBLISHED" else f"it is {status}"
    if "started before publishing" in message:
        return (
            "it is already published"
            if status == "PUBLISHED"
            else f"it is {status}: start() it first"
        )
    if "stopped before starting" in message:
        return (
            f"it is already {status}" if status in ("STARTED", "PUBLISHED") else f"it is {status}"
        )
    if "published before unpublishing" in message:
        return f"it is {status}: only the PUBLISHED version can be unpublished"
    return ""
