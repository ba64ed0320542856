"""Deploying a version to a KAI Server from a notebook: ``deploy(v)`` and the :class:`Deployment`.

``deploy`` walks KRE's lifecycle the way a person would in the UI: validate and build the
``.krt`` (a version with errors never leaves the notebook), check that the runtime has no
version of that name yet, upload it, wait until KRE has checked it (CREATED), set config
values, start it and wait until its nodes run (STARTED), and optionally publish it. Every KRE
refusal surfaces with KRE's own message.

Config values sent are only the explicit ``config=`` ones and those given in the notebook with
``v.config(KEY="value")``: values from ``.env`` files or the environment often hold local
secrets and are never uploaded without being asked for.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from krtlab.errors import DeployError

from .card import card_html, card_text
from .compare import Comparison
from .health import wait_healthy
from .kai import KaiServer, VersionInfo

if TYPE_CHECKING:
    from krtlab.authoring.version import Version

    from .diff import VersionDiff

__all__ = ["Comparison", "Deployment", "deploy"]  # Comparison lives in .compare

Progress = Callable[[str], None] | None


def _as_version(version_or_path: Any) -> Version:
    from krtlab.authoring.version import Version

    if isinstance(version_or_path, Version):
        return version_or_path
    import krtlab

    return krtlab.load(version_or_path)


def _as_server(server: KaiServer | str | None) -> KaiServer:
    return server if isinstance(server, KaiServer) else KaiServer(server)


def _local_values(version: Version) -> dict[str, str]:
    """Values given with ``v.config(K=...)`` (a FILE key's value read from the file it names,
    as in local runs); never values from ``.env`` files or the environment."""
    from krtlab.runtime.config import resolve_config

    resolved = resolve_config(version)
    return {k: v for k, v in resolved.items() if resolved.sources.get(k) == "v.config"}


def build_bytes(version: Version) -> bytes:
    """The version's ``.krt`` bytes (ValidationError if it has errors: nothing is uploaded)."""
    with tempfile.TemporaryDirectory(prefix="krtlab-deploy-") as tmp:
        return version.build(Path(tmp) / f"{version.name}.krt").read_bytes()


def deploy(
    version_or_path: Any,
    server: KaiServer | str | None = None,
    *,
    config: Mapping[str, str] | None = None,
    start: bool = True,
    publish: bool = False,
    comment: str = "",
    timeout: float = 600.0,
    cluster: Any = None,
    progress: Progress = None,
) -> Deployment:
    """Upload a version to a KAI Server and bring it up.

    Args:
        version_or_path: a :class:`~krtlab.Version`, or a project folder, ``krt.yml``, ``.krt``
            or script path (loaded with :func:`krtlab.load`).
        server: a :class:`KaiServer` or its URL (token from ``$KAI_API_TOKEN``); default
            ``$KAI_SERVER_URL``.
        config: config values to set, over the ones given with ``v.config(KEY=...)``.
        start: start the version and wait until it is STARTED.
        publish: also publish it (the runtime's entrypoint then serves it).
        comment: the comment KRE records for start and publish.
        timeout: seconds to wait for each status (CREATED, STARTED, PUBLISHED).
        cluster: a :class:`krtlab.deploy.kube.Cluster` (or kubeconfig path) where
            :meth:`Deployment.call` finds a started, unpublished version's Service, and
            where starting waits for the version's pods to run (KRE 7's admin API does not
            report node health: without a cluster a crashing node goes unnoticed).
        progress: called with one line per step (the notebook panel shows them).

    Raises:
        ValidationError: the version has errors; nothing was uploaded.
        DeployError: the runtime already has a version of that name (checked before the
            upload, which then does not happen; the error suggests the next free name), KRE
            refused a step (its message, code and details) or the version landed in ERROR
            (KRE's ``errors`` listed). AuthError for token or permission problems.
        DeployTimeout: a status (or, with ``cluster``, running pods) was not reached within
            ``timeout``.
    """
    if publish and not start:
        raise ValueError("publish=True needs start=True: KRE publishes only STARTED versions")
    say = progress or (lambda _line: None)
    version = _as_version(version_or_path)
    kai = _as_server(server)
    data = build_bytes(version)
    say(f"built {version.name}.krt ({len(data):,} bytes), no validation errors")
    refuse_duplicate(version, kai, authored=version is version_or_path)
    say(f"uploading {version.name} to {kai.url}")
    info = kai.create_version(data)
    say(f"{info.name} is {info.status}; waiting for KRE to check it")
    info = kai.wait(info.name, "CREATED", timeout=timeout)
    say(f"{info.name} is CREATED")
    dep = Deployment(info.name, kai, version=version, info=info, cluster=cluster, progress=say)
    values = {**_local_values(version), **(config or {})}
    if values:
        dep.update_config(values)
    if start:
        dep.start(comment, timeout=timeout)
    if publish:
        dep.publish(comment, timeout=timeout)
    dep._say = _quiet  # the progress shown was deploy()'s: later actions report elsewhere
    return dep


def _quiet(_line: str) -> None:
    pass


def refuse_duplicate(version: Version, kai: KaiServer, *, authored: bool = True) -> None:
    """DeployError, before anything is uploaded, when the runtime already has a version named
    like ``version`` (KRE would refuse the upload with ``error version duplicated``); the
    error names the existing version's status and the next free name (``authored``: say
    how to rename a :class:`~krtlab.Version` rather than a project on disk)."""
    from krtlab.errors import SpecError
    from krtlab.spec.names import bump_name, default_part, next_free_name

    existing = {info.name: info for info in kai.versions()}
    clash = existing.get(version.name)
    if clash is None:
        return
    name = version.name
    try:
        free = next_free_name(name, existing)
    except SpecError:  # the next version's part would not fit in a name: say only the clash
        free = None
    if free is None:
        how = "rename it"
    elif not authored:
        how = f"rename it to {free!r} (`version:` in krt.yml, or the name a script gives it)"
    else:
        how = f"v.name = {free!r}"
        part = default_part(name)
        if part is not None and bump_name(name, part) == free:
            how = f"v.bump({part!r}) sets it"
    next_free = f"the next free name is {free!r}: {how}" if free else how
    raise DeployError(
        f"a version named {name!r} is already on {kai.url} (status {clash.status}); KRE would "
        "refuse the upload with 'error version duplicated'",
        code="version_duplicated",
        details=f"nothing was uploaded; {next_free}, or attach to the one there with "
        f"Deployment({name!r}, server)",
        operation=f"deploying {name}",
    )


class Deployment:
    """A version on a KAI Server: its status, lifecycle actions and calls to it.

    ``Deployment(name, server)`` attaches to a version already on the server; :func:`deploy`
    returns one with the local :class:`~krtlab.Version` too (for :meth:`compare`).
    """

    def __init__(
        self,
        name: str,
        server: KaiServer | str | None = None,
        *,
        version: Version | None = None,
        info: VersionInfo | None = None,
        cluster: Any = None,
        progress: Progress = None,
        root_certificates: str | os.PathLike[str] | None = None,
    ) -> None:
        self.name = name
        self.server = _as_server(server)
        self.version = version
        self.cluster = cluster
        self.root_certificates = root_certificates  # a private CA's PEM for the entrypoint's TLS
        self._info = info
        self._say = progress or (lambda _line: None)

    # -- status ----------------------------------------------------------------------------------

    def refresh(self) -> VersionInfo:
        """Ask the server for the version's current state."""
        self._info = self.server.version(self.name)
        return self._info

    @property
    def info(self) -> VersionInfo:
        """The last state seen (fetched if never seen); :meth:`refresh` asks again."""
        return self._info if self._info is not None else self.refresh()

    @property
    def status(self) -> str:
        """The current status, asked from the server (CREATED, STARTED, PUBLISHED, ...)."""
        return self.refresh().status

    def wait(self, status: str | Iterable[str], *, timeout: float = 600.0) -> VersionInfo:
        """Wait until the version reaches ``status`` (see :meth:`KaiServer.wait`)."""
        self._info = self.server.wait(self.name, status, timeout=timeout)
        return self._info

    # -- lifecycle -------------------------------------------------------------------------------

    def update_config(self, values: Mapping[str, str] | None = None, /, **more: str) -> VersionInfo:
        """Set config values; KRE refuses keys the version does not declare."""
        values = {**(values or {}), **more}
        self._say(f"setting config {', '.join(sorted(values))}")
        self._info = self.server.update_config(self.name, values)
        return self._info

    def start(self, comment: str = "", *, wait: bool = True, timeout: float = 600.0) -> VersionInfo:
        """Start the version and (by default) wait until it is STARTED."""
        info = self.info
        self._say(f"starting {self.name}")
        try:
            self._info = self.server.start(self.name, comment)
        except DeployError as exc:
            missing = [k for k, v in info.config.items() if not v]
            if not missing or "config" not in exc.message:
                raise
            raise DeployError(
                exc.message,
                code=exc.code,
                details=f"no value for {', '.join(missing)}: pass config={{...}} to deploy() "
                "or call update_config()",
                status=exc.status,
                operation=exc.operation,
            ) from None
        info = self._settle("STARTED", wait, timeout)
        failed = [n for n, status in info.nodes.items() if status == "ERROR"]
        if failed:  # a server that reports node statuses (KRE 7's queries give "")
            raise DeployError(
                f"{self.name} is STARTED but its node(s) {', '.join(failed)} are in ERROR",
                details="KRE marks a version STARTED even when its nodes do not come up; "
                "their logs say why (KAI Server UI, or the stand-in's output)",
                operation=f"startVersion {self.name}",
            )
        cluster = self._cluster()
        if wait and cluster is not None:  # without one, node health is unknown: say nothing
            nodes = {n.name for w in info.workflows for n in w.nodes}
            self._say(f"waiting for the pods of {self.name} to run")
            wait_healthy(lambda: cluster.node_health(self.name), self.name, nodes,
                         namespace=cluster.namespace, timeout=timeout,
                         progress=self._say)  # fmt: skip
            self._say(f"{self.name}'s pods are running")
        return info

    def stop(self, comment: str = "", *, wait: bool = True, timeout: float = 600.0) -> VersionInfo:
        """Stop the version (KRE stops only STARTED ones: unpublish first)."""
        self._say(f"stopping {self.name}")
        self._info = self.server.stop(self.name, comment)
        return self._settle("STOPPED", wait, timeout)

    def publish(
        self, comment: str = "", *, wait: bool = True, timeout: float = 600.0
    ) -> VersionInfo:
        """Publish the version: the runtime's entrypoint serves it from then on."""
        self._say(f"publishing {self.name}")
        self._info = self.server.publish(self.name, comment)
        return self._settle("PUBLISHED", wait, timeout)

    def unpublish(
        self, comment: str = "", *, wait: bool = True, timeout: float = 600.0
    ) -> VersionInfo:
        """Unpublish the version (it stays STARTED)."""
        self._say(f"unpublishing {self.name}")
        self._info = self.server.unpublish(self.name, comment)
        return self._settle("STARTED", wait, timeout)

    def _settle(self, status: str, wait: bool, timeout: float) -> VersionInfo:
        info = self.info
        if wait and info.status != status:
            info = self.wait(status, timeout=timeout)
        self._say(f"{self.name} is {info.status}")
        return info

    # -- calling it ------------------------------------------------------------------------------

    def _cluster(self) -> Any:
        """``cluster`` as a :class:`~krtlab.deploy.kube.Cluster` (a path is a kubeconfig)."""
        if isinstance(self.cluster, str | os.PathLike):
            from krtlab.deploy.kube import Cluster

            self.cluster = Cluster(self.cluster)
        return self.cluster

    def address(self) -> str:
        """Where the version answers gRPC (``host:port``): the runtime's entrypoint once
        PUBLISHED (KRE 7's bare ``entrypoint.<baseDomain>`` becomes ``...:443``, called over
        TLS), else its own Service's cluster IP, found through ``cluster``."""
        return self._where()[0]

    def _where(self) -> tuple[str, bool]:
        """(address, whether it is a Service's cluster IP)."""
        from krtlab.runtime.client import resolve_address

        status = self.status
        if status == "PUBLISHED":
            return resolve_address(self.server.entrypoint_address())[0], False
        if status != "STARTED":
            raise DeployError(
                f"{self.name} is {status}; only a STARTED or PUBLISHED version answers calls",
                operation=f"calling {self.name}",
            )
        cluster = self._cluster()
        if cluster is not None:
            return cluster.entrypoint_address(self.name), True
        raise DeployError(
            f"{self.name} is STARTED but not published, so the runtime's entrypoint does not "
            f"serve it; it is reached through its own Service {self.name!r} in namespace kre",
            details=(
                "publish it, or pass cluster=Cluster(kubeconfig), or forward a port and pass "
                f"address=:\n  kubectl port-forward -n kre svc/{self.name} 9000:9000\n"
                f"  d.call(rpc, ..., address='127.0.0.1:9000')"
            ),
            operation=f"calling {self.name}",
        )

    def call(
        self,
        rpc: str,
        request: Any = None,
        /,
        *,
        address: str | None = None,
        timeout: float | None = None,
        tls: bool | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Call ``rpc`` on the deployed version (gRPC with server reflection); returns a dict.

        ``address`` overrides where: by default the runtime's entrypoint when PUBLISHED, else
        the version's Service through ``cluster``. ``timeout`` is in seconds (None: 30);
        ``tls`` None uses TLS for port 443 or a bare host (see
        :func:`krtlab.runtime.client.resolve_address`).
        """
        from krtlab.runtime.client import CallError, call

        seconds = 30.0 if timeout is None else timeout
        target, via_cluster = (address, False) if address else self._where()
        try:
            return call(target, rpc, request, timeout=seconds, tls=tls,
                        root_certificates=self.root_certificates, **fields)  # fmt: skip
        except CallError as exc:
            # a Service's cluster IP answers only inside the cluster (or the stand-in)
            unreachable = exc.code == "UNAVAILABLE" or (
                exc.code == "DEADLINE_EXCEEDED" and exc.rpc == "reflection"
            )
            if via_cluster and unreachable:
                raise self._outside_cluster(target, exc) from None
            raise

    def _outside_cluster(self, target: str, exc: Exception) -> DeployError:
        cluster = self._cluster()
        try:
            svc = cluster.entrypoint_service(self.name) or {}
        except DeployError:
            svc = {}
        service = (svc.get("metadata") or {}).get("name") or self.name
        namespace = getattr(cluster, "namespace", "kre")
        return DeployError(
            f"cannot reach {self.name} at {target}: that is the cluster IP of its Service "
            f"{service!r}, only reachable from inside the cluster",
            code="cluster_ip_unreachable",
            details=(
                f"{exc}\nforward a port and call through it:\n"
                f"  kubectl port-forward -n {namespace} svc/{service} 9000:9000\n"
                f'  d.call(rpc, ..., address="127.0.0.1:9000")'
            ),
            operation=f"calling {self.name}",
        )

    def compare(self, rpc: str, request: Any = None, /, **fields: Any) -> Comparison:
        """Run ``rpc`` locally in this process (with the deployed config values) and on the
        server; compare both answers."""
        from krtlab.runtime.client import message_to_dict

        if self.version is None:
            raise DeployError(
                f"no local version to compare {self.name} with: use deploy(v, ...) or "
                "Deployment(name, server, version=v)",
                operation="compare",
            )
        deployed = self.call(rpc, request, **fields)
        # the local run gets the deployed config values: a parity check compares code, not
        # two configurations (FILE values stay local: KRE holds their content, not a path)
        version, variables = self.version, set(self.version._variables)
        saved = dict(version._values)
        version._values.update({k: v for k, v in self.info.config.items() if k in variables and v})
        try:
            local = message_to_dict(version.run(rpc, request, **fields).response)
        finally:
            version._values.clear()
            version._values.update(saved)
        return Comparison(rpc, local, deployed)

    def diff(self, version: Version | None = None) -> VersionDiff:
        """What differs between the local version (``version``, default the one deployed
        from) and this one as the server reports it: description, workflows and their node
        order, nodes, config keys and values (secret-looking values hidden); with ``cluster``,
        also images, src, gpu and entrypoints read from its Deployments. Source code cannot be
        compared: KRE does not give the ``.krt`` back (see :mod:`krtlab.deploy.diff`)."""
        from .diff import diff_version

        version = version if version is not None else self.version
        if version is None:
            raise DeployError(
                f"no local version to compare {self.name} with: use d.diff(v), deploy(v, ...) "
                "or Deployment(name, server, version=v)",
                operation="diff",
            )
        return diff_version(version, self.server, self.name, cluster=self._cluster())

    # -- display ---------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return card_text(self)

    def _repr_html_(self) -> str:
        return card_html(self)
