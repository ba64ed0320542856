"""In-memory object store with Kubernetes API semantics, behind :mod:`.kube_api`.

Only what KRE's k8s-manager and krtlab use: Services, ConfigMaps, Pods and Deployments,
namespaced, with uid / resourceVersion / creationTimestamp, label selectors, optimistic
concurrency and Service clusterIP allocation. Errors are :class:`KubeApiError` whose
``payload`` is the Status object the real API server would answer.
"""

from __future__ import annotations

import copy
import datetime as _dt
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any

__all__ = ["RESOURCES", "KubeApiError", "KubeStore", "Resource", "parse_selector", "resource"]


@dataclass(frozen=True)
class Resource:
    """One served resource type."""

    plural: str
    kind: str
    group: str  # "" for the core group
    version: str = "v1"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How Kubernetes names the resource in messages: ``services``, ``deployments.apps``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES = {
    r.plural: r
    for r in (
        Resource("services", "Service", ""),
        Resource("configmaps", "ConfigMap", ""),
        Resource("pods", "Pod", ""),
        Resource("deployments", "Deployment", "apps"),
    )
}
_BY_NAME = {
    **{r.kind.lower(): r for r in RESOURCES.values()},
    **{r.plural: r for r in RESOURCES.values()},
    **{r.qualified: r for r in RESOURCES.values()},
}


class KubeApiError(Exception):
    """A refused call; ``payload`` is the Kubernetes ``Status`` object to send back."""

    def __init__(
        self, status: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message
        self.payload: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
        }
        if details is not None:
            self.payload["details"] = details
        self.payload["code"] = status

    @classmethod
    def not_found(cls, res: Resource, name: str) -> KubeApiError:
        return cls(404, "NotFound", f'{res.qualified} "{name}" not found', _details(res, name))

    @classmethod
    def bad_request(cls, message: str) -> KubeApiError:
        return cls(400, "BadRequest", message)

    @classmethod
    def invalid(cls, res: Resource, name: str, field: str, why: str, cause: str) -> KubeApiError:
        message = f'{res.kind} "{name}" is invalid: {field}: {why}'
        details = {**_details(res, name), "kind": res.kind}
        details["causes"] = [{"reason": cause, "message": why, "field": field}]
        return cls(422, "Invalid", message, details)


def _details(res: Resource, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if res.group:
        out["group"] = res.group
    out["kind"] = res.plural
    return out


def resource(kind: str) -> Resource:
    """The resource for a plural (``services``), a kind (``Service``) or ``deployments.apps``."""
    found = _BY_NAME.get(kind.lower())
    if found is None:
        raise KubeApiError(404, "NotFound", "the server could not find the requested resource", {})
    return found


# -- label selectors ---------------------------------------------------------------------------

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_EQ = re.compile(rf"^\s*({_NAME})\s*(==|=|!=)\s*({_VALUE})\s*$")
_SET = re.compile(rf"^\s*({_NAME})\s+(in|notin)\s*\(([^()]*)\)\s*$")
_EXISTS = re.compile(rf"^\s*(!?)\s*({_NAME})\s*$")

Requirement = tuple[str, str, frozenset[str]]  # (key, operator, values)


def _split(selector: str) -> list[str]:
    """Split on commas outside parentheses (``a in (x,y),b`` is two requirements)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(selector):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(selector[start:i])
            start = i + 1
    parts.append(selector[start:])
    return parts


def parse_selector(selector: str) -> list[Requirement]:
    """``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``; commas AND.

    Raises a 400 :class:`KubeApiError` worded like the API server for anything else.
    """
    out: list[Requirement] = []
    if not selector.strip():
        return out
    for part in _split(selector):
        if m := _EQ.match(part):
            op = "!=" if m.group(3) == "!=" else "="
            out.append((m.group(1), op, frozenset([m.group(4)])))
        elif m := _SET.match(part):
            values = frozenset(v.strip() for v in m.group(4).split(","))
            out.append((m.group(1), m.group(3), values))
        elif m := _EXISTS.match(part):
            out.append((m.group(2), "!" if m.group(1) else "exists", frozenset()))
        else:
            raise KubeApiError.bad_request(
                f"unable to parse requirement: found '{part.strip()}', expected: "
                "identifier, '=', '==', '!=', 'in', 'notin' or '!'"
            )
    return out


def selector_matches(requirements: list[Requirement], labels: dict[str, str]) -> bool:
    """Whether ``labels`` satisfy every requirement (Kubernetes semantics: ``!=`` and
    ``notin`` also match objects that lack the key)."""
    for key, op, values in requirements:
        has, value = key in labels, labels.get(key)
        ok = {
            "=": has and value in values,
            "in": has and value in values,
            "!=": not has or value not in values,
            "notin": not has or value not in values,
            "exists": has,
            "!": not has,
        }[op]
        if not ok:
            return False
    return True


# -- the store ---------------------------------------------------------------------------------


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class KubeStore:
    """Thread-safe in-memory objects with the API server's bookkeeping.

    Services get a free ``10.96.x.y`` clusterIP unless they bring one (kept as given, and
    immutable afterwards, as in Kubernetes).

    ``kind`` arguments accept a plural (``services``) or a kind (``Service``). Objects are
    copied in and out, so callers never share state with the store.
    """

    def __init__(self, *, service_cidr: str = "10.96.0.0/16") -> None:
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._rv = 1000
        prefix = service_cidr.split("/")[0].rsplit(".", 2)[0]  # "10.96"
        self._ip_prefix = prefix
        self._next_ip = 11  # .0.1 is the `kubernetes` Service and .0.10 cluster DNS

    # bookkeeping

    def _bump(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _used_ips(self) -> set[str]:
        return {
            o["spec"].get("clusterIP")
            for (plural, _, _), o in self._objects.items()
            if plural == "services" and isinstance(o.get("spec"), dict)
        }

    def _allocate_ip(self) -> str:
        used = self._used_ips()
        while True:
            n, self._next_ip = self._next_ip, self._next_ip + 1
            ip = f"{self._ip_prefix}.{n // 256 % 256}.{n % 256}"
            if n % 256 not in (0, 255) and ip not in used:
                return ip

    def _prepare(self, obj: dict[str, Any], op: str) -> tuple[Resource, dict[str, Any]]:
        if not isinstance(obj, dict):
            raise KubeApiError.bad_request("the object is not a JSON object")
        res = resource(str(obj.get("kind") or ""))
        obj = copy.deepcopy(obj)
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            meta = obj["metadata"] = {}
        if not meta.get("name"):
            if op == "create" and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            else:
                raise KubeApiError.invalid(
                    res,
                    "",
                    "metadata.name",
                    "Required value: name or generateName is required",
                    "FieldValueRequired",
                )
        meta["namespace"] = meta.get("namespace") or "default"
        return res, obj

    def _service_defaults(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or []:
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        old_ip = (old or {}).get("spec", {}).get("clusterIP")
        ip = spec.get("clusterIP")
        name = obj["metadata"]["name"]
        if old_ip and ip and ip != old_ip:
            raise KubeApiError.invalid(
                RESOURCES["services"],
                name,
                "spec.clusterIPs[0]",
                f'Invalid value: []string{{"{ip}"}}: may not change once set',
                "FieldValueInvalid",
            )
        # A given clusterIP is kept as is, even if another Service has it: LocalKai gives each
        # version a loopback IP and may point two Services (started and published) at it.
        if not ip:
            ip = old_ip or self._allocate_ip()
        spec["clusterIP"], spec["clusterIPs"] = ip, [ip]
        obj.setdefault("status", {"loadBalancer": {}})

    # the API

    def create(self, obj: dict) -> dict:
        """Store a new object (409 AlreadyExists if the name is taken in its namespace)."""
        with self._lock:
            res, obj = self._prepare(obj, "create")
            meta = obj["metadata"]
            key = (res.plural, meta["namespace"], meta["name"])
            if key in self._objects:
                details = _details(res, meta["name"])
                message = f'{res.qualified} "{meta["name"]}" already exists'
                raise KubeApiError(409, "AlreadyExists", message, details)
            if res.plural == "services":
                self._service_defaults(obj, None)
            meta.pop("resourceVersion", None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now()
            meta["resourceVersion"] = self._bump()
            if res.plural == "deployments":
                meta["generation"] = 1
            self._objects[key] = obj
            return copy.deepcopy(obj)

    def replace(self, obj: dict) -> dict:
        """Update an existing object (404 if missing, 409 Conflict on a stale resourceVersion;
        uid and creationTimestamp are kept, as the API server does)."""
        with self._lock:
            res, obj = self._prepare(obj, "replace")
            meta = obj["metadata"]
            key = (res.plural, meta["namespace"], meta["name"])
            old = self._objects.get(key)
            if old is None:
                raise KubeApiError.not_found(res, meta["name"])
            given = meta.get("resourceVersion")
            if given and given != old["metadata"]["resourceVersion"]:
                message = (
                    f'Operation cannot be fulfilled on {res.qualified} "{meta["name"]}": the '
                    "object has been modified; please apply your changes to the latest version "
                    "and try again"
                )
                raise KubeApiError(409, "Conflict", message, _details(res, meta["name"]))
            if res.plural == "services":
                self._service_defaults(obj, old)
            for field in ("uid", "creationTimestamp"):
                meta[field] = old["metadata"][field]
            if res.plural == "deployments":
                changed = obj.get("spec") != old.get("spec")
                meta["generation"] = old["metadata"].get("generation", 1) + int(changed)
            meta["resourceVersion"] = self._bump()
            self._objects[key] = obj
            return copy.deepcopy(obj)

    def get(self, kind: str, namespace: str, name: str) -> dict:
        """One object (404 NotFound Status if absent)."""
        res = resource(kind)
        with self._lock:
            obj = self._objects.get((res.plural, namespace, name))
            if obj is None:
                raise KubeApiError.not_found(res, name)
            return copy.deepcopy(obj)

    def delete(self, kind: str, namespace: str, name: str) -> dict:
        """Remove an object and return it as it was (404 NotFound Status if absent)."""
        res = resource(kind)
        with self._lock:
            obj = self._objects.pop((res.plural, namespace, name), None)
            if obj is None:
                raise KubeApiError.not_found(res, name)
            self._bump()
            return obj

    def list(self, kind: str, namespace: str | None = None, label_selector: str = "") -> list[dict]:
        """Objects of ``kind`` (all namespaces when ``namespace`` is None) matching the
        selector, ordered by namespace then name like the API server."""
        res = resource(kind)
        requirements = parse_selector(label_selector)
        with self._lock:
            return [
                copy.deepcopy(obj)
                for (plural, ns, _), obj in sorted(self._objects.items())
                if plural == res.plural
                and (namespace is None or ns == namespace)
                and selector_matches(requirements, obj["metadata"].get("labels") or {})
            ]

    @property
    def resource_version(self) -> str:
        """The store's latest resourceVersion (what a list answers in ``metadata``)."""
        with self._lock:
            return str(self._rv)
