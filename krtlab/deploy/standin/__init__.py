"""Local stand-ins for a KRE installation: the KAI Server admin API (:class:`LocalKai`) and the
Kubernetes API (:mod:`krtlab.deploy.standin.kube_api`).

:class:`LocalKai` runs on this machine, without a cluster, and enforces a named KRE version's
documented behaviour: its admin API schema verbatim (``kre="7"``, the default, or ``kre="3"``,
before runtimes), version statuses and transitions, error messages and payloads as that version's
gqlgen frames them, token sign-in, RBAC.
Started versions really run (:func:`krtlab.runtime.serve.serve` on their own loopback IP), the
objects KRE's k8s-manager would create appear in the Kubernetes stand-in, and
:attr:`LocalKai.entrypoint_address` forwards gRPC calls to the published version::

    with LocalKai() as kai:  # or LocalKai(kre="3")
        ...  # KaiServer(kai.url, api_token=kai.api_token)
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

from krtlab.deploy.standin.auth import Auth
from krtlab.deploy.standin.kai_api import KaiHttpServer
from krtlab.deploy.standin.kre_schema import KRE_VERSIONS
from krtlab.deploy.standin.lifecycle import Runtime
from krtlab.deploy.standin.objects import VersionObjects
from krtlab.deploy.standin.proxy import EntrypointProxy
from krtlab.errors import DeployError

__all__ = ["KRE_VERSIONS", "LocalKai"]


class _Parts:
    """What a started :class:`LocalKai` runs, stoppable without the LocalKai itself, so a
    :func:`weakref.finalize` can stop it at interpreter exit (or when the LocalKai is lost)."""

    def __init__(self) -> None:
        self.http: KaiHttpServer | None = None
        self.runtime: Runtime | None = None
        self.proxy: EntrypointProxy | None = None
        self.kube: Any = None
        self.tmp: Path | None = None

    def stop(self) -> None:
        if self.http is not None:
            self.http.stop()
            self.http = None
        if self.runtime is not None:
            self.runtime.close()
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None
        if self.kube is not None:
            self.kube.stop()
            self.kube = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


class LocalKai:
    """A KAI Server (KRE admin API) stand-in with one runtime.

    Args:
        kre: the KRE version whose admin API it serves, one of :data:`KRE_VERSIONS`: ``"7"``
            (``kre-7.0.0``: every version query and mutation names the runtime, ``runtimeId:
            ID!``) or ``"3"`` (``kre-3.0.0``: no runtimes, so no ``runtimeId`` anywhere and no
            ``runtimes`` query; refusals worded by its older gqlgen/gqlparser). Each serves its
            schema as KRE's file has it (:mod:`krtlab.deploy.standin.kre_schema`).
        runtime_id: the runtime's id (every version query and mutation names it in KRE 7).
        namespace: the Kubernetes namespace the version objects go to.
        service_form: ``"spec"`` or ``"kre3"``, the entrypoint Service naming (default:
            ``"kre3"`` with ``kre="3"``, else ``"spec"``).
        kube: run the Kubernetes API stand-in and create the objects there.
        data_dir: where uploaded .krt files are kept (default: a temporary folder removed by
            :meth:`stop`).
        version_status_timeout: seconds :meth:`stop` waits for background work.

    Attributes:
        url: ``http://127.0.0.1:<port>`` (``/graphql``, ``/api/v1/auth/token/signin``).
        api_token: the API token of a MANAGER user created at start.
        entrypoint_address: ``127.0.0.1:<port>``, the runtime's public gRPC entrypoint.
        kube: the :class:`~krtlab.deploy.standin.kube_api.KubeApiServer`, or None (also once
            stopped). Each started version's Deployments have Pods there whose status tells
            the nodes' health (see :mod:`krtlab.deploy.standin.pods`).
        kubeconfig: a kubeconfig for ``kube`` (namespace set), or None.
    """

    def __init__(
        self,
        *,
        kre: str = "7",
        runtime_id: str = "local",
        namespace: str = "kre",
        service_form: str | None = None,
        kube: bool = True,
        data_dir: str | os.PathLike[str] | None = None,
        version_status_timeout: float = 120.0,
    ) -> None:
        if str(kre) not in KRE_VERSIONS:
            raise ValueError(f"LocalKai(kre={kre!r}): use one of {', '.join(KRE_VERSIONS)}")
        self.kre = str(kre)
        if service_form is None:
            service_form = "kre3" if self.kre == "3" else "spec"
        self.runtime_id, self.namespace, self.service_form = runtime_id, namespace, service_form
        self._want_kube, self._data_dir = kube, data_dir
        self.version_status_timeout = version_status_timeout
        self.url = ""
        self.api_token = ""
        self.entrypoint_address = ""
        self.kube: Any = None
        self.kubeconfig: Path | None = None
        self.runtime: Runtime | None = None
        self._auth = Auth()
        self._parts = _Parts()
        self._finalizer: weakref.finalize | None = None

    def start(self) -> LocalKai:
        """Start the Kubernetes stand-in, the runtime's entrypoint and the admin API.

        A LocalKai never stopped (say a notebook cell failed before :meth:`stop`) is stopped at
        interpreter exit: no orphan processes, the temporary folder removed.
        """
        if self._finalizer is not None and self._finalizer.alive:
            return self  # already started (``with LocalKai().start() as kai`` is fine)
        self._parts = parts = _Parts()
        self._finalizer = weakref.finalize(self, parts.stop)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        try:  # graphql-core comes with the deploy extra
            from krtlab.deploy.standin.resolvers import build_schema
        except ModuleNotFoundError as exc:
            if exc.name != "graphql":
                raise
            text = "LocalKai needs graphql-core: pip install 'krtlab[deploy]'"
            raise DeployError(text, operation="starting LocalKai") from None
        parts = self._parts
        if self._data_dir is None:
            parts.tmp = data = Path(tempfile.mkdtemp(prefix="krtlab-kai-"))
        else:
            data = Path(self._data_dir)
            data.mkdir(parents=True, exist_ok=True)
        objects = None
        if self._want_kube:
            from krtlab.deploy.standin.kube_api import KubeApiServer

            parts.kube = self.kube = KubeApiServer().start()
            self.kubeconfig = self.kube.write_kubeconfig(
                data / "kubeconfig", namespace=self.namespace
            )
            objects = VersionObjects(
                self.kube.store, namespace=self.namespace, form=self.service_form
            )
        parts.runtime = self.runtime = Runtime(
            self.runtime_id, data, objects=objects, status_timeout=self.version_status_timeout
        )
        parts.proxy = EntrypointProxy(self.runtime.published_address, self.runtime_id).start()
        self.entrypoint_address = parts.proxy.address
        parts.http = KaiHttpServer(None, self._auth)
        self.url = parts.http.url
        parts.http.schema = build_schema(
            self.runtime, self._auth, self.entrypoint_address, self.url,
            kre=self.kre, namespace=self.namespace,
        )  # fmt: skip
        parts.http.start()
        self.api_token = self.add_user("admin@krtlab.local", "MANAGER")

    def add_user(self, email: str, access_level: str = "MANAGER") -> str:
        """Create a user (``VIEWER``, ``MANAGER`` or ``ADMIN``) and return a new API token."""
        return self._auth.new_token(self._auth.add_user(email, access_level))

    def stop(self) -> None:
        """Stop the admin API, every running version, the entrypoint and the Kubernetes API
        (and remove the temporary folder). Calling it again does nothing."""
        if self._finalizer is not None:
            self._finalizer()  # runs _Parts.stop once; later calls are no-ops
        self.kube = None

    def __enter__(self) -> LocalKai:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url or "not started"
        return f"<LocalKai kre={self.kre} {where} runtime={self.runtime_id!r}>"
