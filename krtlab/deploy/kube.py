"""Find a deployed version's objects in a Kubernetes cluster (the client side).

:class:`Cluster` reads the namespace KRE runs in (``kre`` by convention) with the official
``kubernetes`` client, which is an optional dependency (``pip install 'krtlab[deploy]'``) and
is only imported when a :class:`Cluster` is made. It answers with API JSON dicts (camelCase
keys, exactly what ``kubectl get -o json`` shows)::

    cluster = Cluster()                      # $KUBECONFIG, ~/.kube/config or in-cluster
    cluster.entrypoint_address("greeter-v1")  # '10.96.0.11:9000'

The entrypoint Service is found in either form (the spec's or KRE 3.0's, see
:mod:`krtlab.deploy.k8s`), with or without kre-5's ``<runtimeId>-`` prefix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from krtlab.errors import AuthError, DeployError

from .health import node_health
from .k8s import find_entrypoint_service, service_version

__all__ = ["Cluster"]

_INSTALL_HINT = "pip install 'krtlab[deploy]'"
# (kind, API class, list method) for what KRE creates per version
_KINDS = (
    ("ConfigMap", "CoreV1Api", "list_namespaced_config_map"),
    ("Deployment", "AppsV1Api", "list_namespaced_deployment"),
    ("Service", "CoreV1Api", "list_namespaced_service"),
)


def _kubernetes() -> Any:
    try:
        import kubernetes
    except ImportError:
        raise DeployError(
            f"the kubernetes package is not installed: {_INSTALL_HINT}",
            operation="connect to Kubernetes",
        ) from None
    return kubernetes


def _status_message(exc: Any) -> tuple[str, str]:
    """(message, reason) of a Kubernetes Status error body, else the HTTP reason."""
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        return str(body.get("message") or exc.reason), str(body.get("reason") or "")
    return str(exc.reason or exc), ""


class Cluster:
    """A Kubernetes namespace where KRE runs versions, read through the official client.

    ``kubeconfig`` is a kubeconfig file; None tries ``$KUBECONFIG``, ``~/.kube/config`` and then
    the in-cluster service account. ``context`` picks a kubeconfig context (default: the
    current one). Raises :class:`~krtlab.errors.DeployError` when the ``kubernetes`` package is
    missing or no configuration is found.
    """

    def __init__(
        self,
        kubeconfig: str | os.PathLike[str] | None = None,
        *,
        context: str | None = None,
        namespace: str = "kre",
    ) -> None:
        k8s = _kubernetes()
        self.namespace = namespace
        self.source = ""  # where the configuration came from, for messages
        self._client = self._connect(k8s, kubeconfig, context)
        self._k8s = k8s

    def _connect(self, k8s: Any, kubeconfig: Any, context: str | None) -> Any:
        op = "load the Kubernetes configuration"
        paths = self._kubeconfig_paths(kubeconfig)
        try:
            if paths:
                self.source = os.pathsep.join(paths)
                return k8s.config.new_client_from_config(
                    config_file=self.source, context=context, persist_config=False
                )
            if os.environ.get("KUBERNETES_SERVICE_HOST"):  # running in a pod
                configuration = k8s.client.Configuration()
                k8s.config.load_incluster_config(client_configuration=configuration)
                self.source = "in-cluster service account"
                return k8s.client.ApiClient(configuration)
        except k8s.config.ConfigException as exc:
            raise DeployError(f"{self.source or 'in-cluster'}: {exc}", operation=op) from None
        raise DeployError(
            "no kubeconfig found: pass kubeconfig=..., set $KUBECONFIG or create "
            "~/.kube/config (and this is not a pod with a service account)",
            operation=op,
        )

    @staticmethod
    def _kubeconfig_paths(kubeconfig: Any) -> list[str]:
        if kubeconfig is not None:
            path = Path(kubeconfig).expanduser()
            if not path.is_file():
                raise DeployError(
                    f"kubeconfig {str(path)!r} does not exist",
                    operation="load the Kubernetes configuration",
                )
            return [str(path)]
        env = os.environ.get("KUBECONFIG", "")
        candidates = [p for p in env.split(os.pathsep) if p] or ["~/.kube/config"]
        return [str(Path(p).expanduser()) for p in candidates if Path(p).expanduser().is_file()]

    def __repr__(self) -> str:
        return f"Cluster(namespace={self.namespace!r}, source={self.source!r})"

    def close(self) -> None:
        """Close the client's connection pool."""
        self._client.close()

    # -- calls ---------------------------------------------------------------------------------

    def _list(self, api: str, method: str, kind: str, label_selector: str = "") -> list[dict]:
        """One list call, answered as API JSON dicts (each with its kind and apiVersion)."""
        k8s = self._k8s
        call = getattr(getattr(k8s.client, api)(self._client), method)
        what = f"list {kind}s in namespace {self.namespace!r}"
        try:
            response = call(self.namespace, label_selector=label_selector, _preload_content=False)
        except k8s.client.ApiException as exc:
            message, reason = _status_message(exc)
            error = AuthError if exc.status in (401, 403) else DeployError
            raise error(message, code=reason, status=exc.status, operation=what) from None
        except Exception as exc:  # urllib3: refused, DNS, TLS; say where we tried to go
            host = self._client.configuration.host
            raise DeployError(
                f"cannot reach the Kubernetes API at {host}: {exc}", operation=what
            ) from None
        data = json.loads(response.data or b"{}")
        api_version = data.get("apiVersion", "v1")
        items = data.get("items") or []
        for item in items:  # list items come without these; put them back
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    def services(self, label_selector: str = "") -> list[dict]:
        """The Services of the namespace (optionally filtered by a label selector)."""
        return self._list("CoreV1Api", "list_namespaced_service", "Service", label_selector)

    def entrypoint_service(self, version: str, *, published: bool | None = None) -> dict | None:
        """``version``'s entrypoint Service, or None (see :func:`~krtlab.deploy.k8s.
        find_entrypoint_service` for ``published``)."""
        return find_entrypoint_service(self.services(), version, published=published)

    def entrypoint_address(self, version: str, *, published: bool | None = None) -> str:
        """``"<clusterIP>:<grpc port>"`` of ``version``'s entrypoint Service.

        Raises :class:`~krtlab.errors.DeployError` naming the Services seen (and the two
        forms looked for) when none matches.
        """
        services = self.services()
        svc = find_entrypoint_service(services, version, published=published)
        op = f"find the entrypoint Service of {version!r}"
        if svc is None:
            seen = ", ".join(sorted(_describe(s) for s in services)) or "none"
            which = "" if published is None else ("published " if published else "started ")
            raise DeployError(
                f"no {which}entrypoint Service for version {version!r} in namespace "
                f"{self.namespace!r}; looked for {_forms(version)}; Services seen: {seen}",
                operation=op,
            )
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        ports = spec.get("ports") or []
        port = next((p.get("port") for p in ports if p.get("name") == "grpc"), None)
        if port is None and ports:
            port = ports[0].get("port")
        name = svc["metadata"]["name"]
        if not ip or ip == "None" or port is None:
            raise DeployError(
                f"Service {name!r} has no cluster IP and grpc port (clusterIP={ip!r})",
                operation=op,
            )
        return f"{ip}:{port}"

    def pods(self, version: str) -> list[dict]:
        """The pods of ``version``: its nodes' (``version-name=<v>``) and its entrypoint's
        (``version-name=<v>-entrypoint`` in the spec's form, ``<v>`` in KRE 3.0's)."""
        pods = self._list("CoreV1Api", "list_namespaced_pod", "Pod", _version_selector(version))
        # a version really named "<v>-entrypoint" would match too: keep only its entrypoint
        return [p for p in pods if _labels(p).get("version-name") == version
                or _labels(p).get("type") == "entrypoint"]  # fmt: skip

    def node_health(self, version: str) -> dict[str, str]:
        """``node name`` → health read from ``version``'s pods: ``"Running"``, ``"Running (not
        ready)"``, ``"Pending"``, ``"CrashLoopBackOff: <message>"``, ... (the entrypoint is
        ``"entrypoint"``; see :mod:`krtlab.deploy.health`). KRE 7's admin API does not report
        node statuses in queries, the pods do."""
        return node_health(self.pods(version))

    def version_objects(self, version: str) -> list[dict]:
        """The ConfigMaps, Deployments and entrypoint Service(s) of ``version`` in the
        namespace, as API JSON dicts, in that order."""
        out: list[dict] = []
        for kind, api, method in _KINDS:
            if kind == "Service":
                found = self._list(api, method, kind, _version_selector(version))
                out += [s for s in found if service_version(s, version) is not None]
            else:
                out += self._list(api, method, kind, f"version-name={version}")
        return out


def _version_selector(version: str) -> str:
    return f"version-name in ({version},{version}-entrypoint)"


def _labels(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


def _describe(svc: dict) -> str:
    meta = svc.get("metadata") or {}
    selector = (svc.get("spec") or {}).get("selector") or meta.get("labels") or {}
    label = selector.get("version-name")
    return f"{meta.get('name')} (version-name={label})" if label else str(meta.get("name"))


def _forms(version: str) -> str:
    return (
        f"'{version}' or 'active-entrypoint' selecting version-name={version}-entrypoint "
        f"(spec form), '{version}-entrypoint' or 'active-entrypoint' selecting "
        f"version-name={version} (KRE 3.0 form), optionally prefixed '<runtimeId>-'"
    )
