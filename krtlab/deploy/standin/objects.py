"""The Kubernetes side of a started version, done like KRE's k8s-manager in a :class:`KubeStore`.

The entrypoint Service gets ``spec.clusterIP`` = the version's loopback IP, so
``<clusterIP>:9000`` reaches the locally served version exactly like a cluster IP would. Each
Deployment also gets a Pod (see :mod:`.pods`) whose status follows the served processes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from krtlab.deploy.k8s import entrypoint_service, version_objects
from krtlab.deploy.standin.pods import failing_deployments, pod, pod_selector, pod_status
from krtlab.spec.model import Manifest

__all__ = ["VersionObjects"]

_log = logging.getLogger("krtlab.standin.kai")


class VersionObjects:
    """Creates, renames and deletes one runtime's version objects in a Kubernetes store."""

    def __init__(self, store: Any, *, namespace: str, form: str) -> None:
        self.store, self.namespace, self.form = store, namespace, form

    def _service(self, version: str, ip: str, *, published: bool) -> dict[str, Any]:
        svc = entrypoint_service(
            version, published=published, form=self.form, namespace=self.namespace
        )
        svc["spec"]["clusterIP"] = ip
        return svc

    def _delete(self, kind: str, name: str) -> None:
        try:
            self.store.delete(kind, self.namespace, name)
        except Exception as exc:  # KRE's k8s-manager logs a missing object and goes on
            _log.debug("delete %s/%s: %s", kind, name, exc)

    def _put(self, obj: dict[str, Any]) -> None:
        # KRE's createEntrypointService is get-or-update: an existing object never fails it
        self._delete(obj["kind"], obj["metadata"]["name"])
        self.store.create(obj)

    def _objects(self, manifest: Manifest, config: Mapping[str, str] | None = None) -> list[dict]:
        return version_objects(
            manifest, form=self.form, namespace=self.namespace, config=config, runtime_id=None
        )

    def create(
        self, manifest: Manifest, ip: str, config: Mapping[str, str], *, published: bool = False
    ) -> None:
        """Create the ConfigMaps, Deployments (with ``Pending`` Pods) and the entrypoint Service
        of a started version."""
        for obj in self._objects(manifest, config):
            if obj["kind"] == "Service":
                obj = self._service(manifest.version, ip, published=published)
            self._put(obj)  # a crashed earlier start may have left it
        self.restart_pods(manifest)

    def delete(self, manifest: Manifest, *, published: bool = False) -> None:
        """Stop: delete the version's ConfigMaps, Deployments, Pods and its Service."""
        self._delete_pods(manifest)
        for obj in self._objects(manifest):
            if obj["kind"] == "Service":
                obj = self._service(manifest.version, "", published=published)
            self._delete(obj["kind"], obj["metadata"]["name"])

    def replace_config(self, manifest: Manifest, config: Mapping[str, str]) -> None:
        """UpdateConfig: recreate ``<version>-krt-conf`` with the new values."""
        for obj in self._objects(manifest, config):
            if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].endswith("-krt-conf"):
                self._put(obj)

    # -- pods -----------------------------------------------------------------------------------

    def _deployments(self, manifest: Manifest) -> list[dict[str, Any]]:
        return [o for o in self._objects(manifest) if o["kind"] == "Deployment"]

    def _pods(self, deployment: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self.store.list("Pod", self.namespace, pod_selector(deployment))

    def _delete_pods(self, manifest: Manifest) -> None:
        for dep in self._deployments(manifest):
            for p in self._pods(dep):
                self._delete("Pod", p["metadata"]["name"])

    def restart_pods(self, manifest: Manifest) -> None:
        """Replace the version's Pods by new ``Pending`` ones (the pods being (re)started)."""
        self._delete_pods(manifest)
        for dep in self._deployments(manifest):
            try:
                dep = self.store.get("Deployment", self.namespace, dep["metadata"]["name"])
            except Exception:  # no Deployment, no Pods
                continue
            self.store.create(pod(dep))

    def settle_pods(self, manifest: Manifest, error: str = "") -> None:
        """The Pods once serving ended: all ``Running`` and ready, or those ``error`` names
        crash-looping."""
        deps = self._deployments(manifest)
        failing = failing_deployments(deps, error) if error else set()
        for dep in deps:
            why = error if dep["metadata"]["name"] in failing else ""
            for p in self._pods(dep):
                p["status"] = pod_status(p, "Running", why)
                p["metadata"].pop("resourceVersion", None)
                self.store.replace(p)

    # -- publish --------------------------------------------------------------------------------

    def publish(self, version: str, ip: str, previous: tuple[str, str] | None) -> None:
        """KRE's publish: the previous version gets its own Service back, this one the active."""
        active = self._service(version, ip, published=True)
        self._delete("Service", active["metadata"]["name"])  # frees the previous one's IP
        if previous is not None:
            self._put(self._service(previous[0], previous[1], published=False))
        self._delete("Service", self._service(version, ip, published=False)["metadata"]["name"])
        self._put(active)

    def unpublish(self, version: str, ip: str) -> None:
        """KRE's unpublish: ``active-entrypoint`` goes, the version's own Service comes back."""
        self._delete("Service", self._service(version, ip, published=True)["metadata"]["name"])
        self._put(self._service(version, ip, published=False))
