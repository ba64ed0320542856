"""The Kubernetes side of a started version, done like KRE's k8s-manager in a :class:`KubeStore`.

The entrypoint Service gets ``spec.clusterIP`` = the version's loopback IP, so
``<clusterIP>:9000`` reaches the locally served version exactly like a cluster IP would.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from krtlab.deploy.k8s import entrypoint_service, version_objects
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

    def create(
        self, manifest: Manifest, ip: str, config: Mapping[str, str], *, published: bool = False
    ) -> None:
        """Create the ConfigMaps, Deployments and the entrypoint Service of a started version."""
        for obj in version_objects(
            manifest, form=self.form, namespace=self.namespace, config=config, runtime_id=None
        ):
            if obj["kind"] == "Service":
                obj = self._service(manifest.version, ip, published=published)
            self._delete(obj["kind"], obj["metadata"]["name"])  # a crashed earlier start
            self.store.create(obj)

    def delete(self, manifest: Manifest, *, published: bool = False) -> None:
        """Stop: delete the version's ConfigMaps, Deployments and its Service."""
        for obj in version_objects(manifest, form=self.form, namespace=self.namespace):
            if obj["kind"] == "Service":
                obj = self._service(manifest.version, "", published=published)
            self._delete(obj["kind"], obj["metadata"]["name"])

    def replace_config(self, manifest: Manifest, config: Mapping[str, str]) -> None:
        """UpdateConfig: recreate ``<version>-krt-conf`` with the new values."""
        for obj in version_objects(
            manifest, form=self.form, namespace=self.namespace, config=config
        ):
            if obj["kind"] == "ConfigMap" and obj["metadata"]["name"].endswith("-krt-conf"):
                self._delete("ConfigMap", obj["metadata"]["name"])
                self.store.create(obj)

    def publish(self, version: str, ip: str, previous: tuple[str, str] | None) -> None:
        """KRE's publish: the previous version gets its own Service back, this one the active."""
        active = entrypoint_service(version, published=True, form=self.form)["metadata"]["name"]
        self._delete("Service", active)
        if previous is not None:
            self.store.create(self._service(previous[0], previous[1], published=False))
        own = self._service(version, ip, published=False)["metadata"]["name"]
        self._delete("Service", own)
        self.store.create(self._service(version, ip, published=True))

    def unpublish(self, version: str, ip: str) -> None:
        """KRE's unpublish: ``active-entrypoint`` goes, the version's own Service comes back."""
        self._delete("Service", self._service(version, ip, published=True)["metadata"]["name"])
        self.store.create(self._service(version, ip, published=False))
