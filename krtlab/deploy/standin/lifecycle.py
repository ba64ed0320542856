"""Versions of one runtime and their state machine, enforcing KRE 7's rules and messages.

Transitions (``entity/version.go`` and ``version_interactor.go``): create ``CREATING`` →
``CREATED``/``ERROR``; start from ``CREATED``/``STOPPED`` → ``STARTING`` → ``STARTED``; stop from
``STARTED`` → ``STOPPING`` → ``STOPPED``; publish from ``STARTED`` → ``PUBLISHED`` (the previous
one back to ``STARTED``); unpublish from ``PUBLISHED`` → ``STARTED``. Started versions really
run: :func:`krtlab.runtime.serve.serve` on their own loopback IP, port 9000.
"""

from __future__ import annotations

import copy
import itertools
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from krtlab.deploy.k8s import kre_ids
from krtlab.deploy.standin.krt_check import check_content, check_sync
from krtlab.deploy.standin.objects import VersionObjects
from krtlab.deploy.standin.pods import first_line
from krtlab.deploy.standin.serving import GRPC_PORT, Outcome, free_loopback_ip, serve_within

__all__ = ["Runtime", "VersionRecord"]

_log = logging.getLogger("krtlab.standin.kai")
UPDATE_CONFIG_TIMEOUT = 50.0  # the admin API's deadline on the k8s-manager's UpdateConfig


def _restart_error(out: Outcome) -> str:
    """The admin API's answer when ``UpdateConfig`` failed: the k8s-manager's gRPC error."""
    if out.timed_out:  # the admin API's context deadline expired first
        return "rpc error: code = DeadlineExceeded desc = context deadline exceeded"
    return f"rpc error: code = Unknown desc = error restarting pods: {first_line(out.error)}"


def _snapshot(rec: VersionRecord) -> VersionRecord:
    """The version as the mutation answers it, before background work moves it on."""
    return replace(
        rec,
        workflows=copy.deepcopy(rec.workflows),
        config_vars=copy.deepcopy(rec.config_vars),
        errors=list(rec.errors),
        service=None,
        manifest=None,
    )


@dataclass
class VersionRecord:
    """One version as KRE stores it (plus what the stand-in needs to run it)."""

    id: str
    name: str
    description: str
    creation_author: str
    krt_path: Path
    krt: dict[str, Any]
    workflows: list[dict[str, Any]]
    config_vars: list[dict[str, str]]
    status: str = "CREATING"
    creation_date: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    publication_date: datetime | None = None
    publication_author: str | None = None
    has_doc: bool = False
    errors: list[str] = field(default_factory=list)
    ip: str | None = None
    service: Any = None
    start_error: str = ""  # why serve failed (KRE only shows it in the k8s-manager's logs)
    # bumped by start/stop/update_config (and close): background work of an older generation
    # is stale and stops whatever it served
    generation: int = 0
    manifest: Any = None  # the parsed krt.yml, loaded on first need

    @property
    def completed(self) -> bool:
        return all(v["value"] != "" for v in self.config_vars)

    @property
    def config(self) -> dict[str, str]:
        return {v["key"]: v["value"] for v in self.config_vars}


class Runtime:
    """The versions of one runtime; every public method enforces KRE's checks and wording."""

    def __init__(
        self,
        runtime_id: str,
        data_dir: Path,
        *,
        objects: VersionObjects | None,
        status_timeout: float,
    ) -> None:
        self.id, self.name = runtime_id, runtime_id
        self.creation_date = datetime.now(timezone.utc)
        self.data_dir, self.objects, self.status_timeout = data_dir, objects, status_timeout
        self.versions: dict[str, VersionRecord] = {}
        self.lock = threading.RLock()
        self._threads: list[threading.Thread] = []
        self._serving_ips: list[str] = []  # IPs of serves in progress (not yet any version's)
        self._closing = False
        self.update_timeout = UPDATE_CONFIG_TIMEOUT

    # -- queries --------------------------------------------------------------------------------

    def get(self, name: str) -> VersionRecord:
        with self.lock:
            if name not in self.versions:
                raise ValueError("error version not found")
            return self.versions[name]

    def published(self) -> VersionRecord | None:
        with self.lock:
            return next((v for v in self.versions.values() if v.status == "PUBLISHED"), None)

    def published_address(self) -> str | None:
        """``<ip>:9000`` of the published version, for the runtime's entrypoint proxy."""
        v = self.published()
        return f"{v.ip}:{GRPC_PORT}" if v is not None and v.ip else None

    # -- create -------------------------------------------------------------------------------

    def create(self, user_id: str, data: bytes) -> VersionRecord:
        """KRE's ``Create``: synchronous checks, then ``CREATING`` and the content checks."""
        krt = check_sync(data)
        with self.lock:
            if krt["Version"] in self.versions:
                raise ValueError("error version duplicated")
            existing = self._existing_conf()
            cfg = [
                {"key": k, "value": existing.get(k, ""), "type": t}
                for keys, t in ((krt["Config"]["Files"], "FILE"),
                                (krt["Config"]["Variables"], "VARIABLE"))
                for k in keys or []
            ]  # fmt: skip
            path = self.data_dir / f"{krt['Version']}.krt"
            path.write_bytes(data)
            rec = VersionRecord(
                id=secrets.token_hex(12),
                name=krt["Version"],
                description=krt["Description"],
                creation_author=user_id,
                krt_path=path,
                krt=krt,
                workflows=self._workflows(krt),
                config_vars=cfg,
            )
            self.versions[rec.name] = rec
            answer = _snapshot(rec)
        self._spawn(self._complete_creation, rec, data)
        return answer

    def _existing_conf(self) -> dict[str, str]:
        # readExistingConf: older versions first, so the newest non-empty value wins
        out: dict[str, str] = {}
        for v in sorted(self.versions.values(), key=lambda v: v.creation_date):
            out.update({c["key"]: c["value"] for c in v.config_vars if c["value"] != ""})
        return out

    @staticmethod
    def _workflows(krt: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        flows = krt["Workflows"] or []
        # the same ids as the node-id labels of the objects (krtlab.deploy.k8s draws both)
        ids = kre_ids(krt["Version"], None, [wf["Sequential"] for wf in flows])
        for wf, (wf_id, node_ids, edge_ids) in zip(flows, ids, strict=True):
            # no status: KRE 7 does not store it (``bson:"-"``), the Pods show the nodes' health
            nodes = [{"id": i, "name": n} for i, n in zip(node_ids, wf["Sequential"], strict=True)]
            edges = [
                {"id": e, "fromNode": a["id"], "toNode": b["id"]}
                for e, (a, b) in zip(edge_ids, itertools.pairwise(nodes), strict=True)
            ]
            out.append({"id": wf_id, "name": wf["Name"], "nodes": nodes, "edges": edges})
        return out

    def _complete_creation(self, rec: VersionRecord, data: bytes) -> None:
        errors, has_doc = check_content(data, rec.krt)
        with self.lock:
            rec.has_doc = has_doc
            rec.errors = errors
            rec.status = "ERROR" if errors else "CREATED"

    # -- start / stop -------------------------------------------------------------------------

    def start(self, name: str) -> VersionRecord:
        """KRE's ``Start``: from CREATED/STOPPED, config complete; serves in the background."""
        with self.lock:
            rec = self.get(name)
            if rec.status not in ("CREATED", "STOPPED"):
                raise ValueError("the version must be stopped before starting")
            if not rec.completed:
                raise ValueError("version config is incomplete")
            rec.ip = free_loopback_ip(self._used_ips())
            rec.status = "STARTING"
            rec.generation += 1
            work = (rec, rec.generation, rec.ip, rec.config)
            answer = _snapshot(rec)
        self._spawn(self._run_start, *work)
        return answer

    def _used_ips(self) -> set[str]:
        return {v.ip for v in self.versions.values() if v.ip} | set(self._serving_ips)

    def _current(self, rec: VersionRecord, generation: int) -> bool:
        """Whether work started at ``generation`` is still what the version wants (under lock)."""
        return not self._closing and rec.generation == generation

    def _manifest(self, rec: VersionRecord) -> Any:
        if rec.manifest is None:
            from krtlab.bundle.load import load_project

            rec.manifest = load_project(rec.krt_path).manifest
        return rec.manifest

    def _objects_do(self, rec: VersionRecord, generation: int | None, what: str, *a: Any) -> None:
        """``self.objects.<what>(manifest, *a)`` under the lock, if the work is still current."""
        if self.objects is None:
            return
        try:
            manifest = self._manifest(rec)
            with self.lock:
                if generation is None or self._current(rec, generation):
                    getattr(self.objects, what)(manifest, *a)
        except Exception as exc:  # the k8s-manager logs it; the version goes on
            _log.warning("%s of %s: %s", what, rec.name, exc)

    def _serve(self, rec: VersionRecord, gen: int, ip: str, config: dict, timeout: float) -> Any:
        with self.lock:
            self._serving_ips.append(ip)
        try:
            return serve_within(
                rec.krt_path, ip, config, timeout, lock=self.lock,
                wanted=lambda: self._current(rec, gen), threads=self._threads,
            )  # fmt: skip
        finally:
            with self.lock:
                self._serving_ips.remove(ip)

    def _settle(self, rec: VersionRecord, gen: int, out: Any) -> bool:
        """Record a serve's outcome if ``gen`` is still current, else stop what was served."""
        if out.error:  # KRE logs the k8s-manager's error and still says STARTED
            _log.warning("version %s did not start: %s", rec.name, out.error)
        with self.lock:
            current = self._current(rec, gen)
            if current:
                rec.service, rec.start_error = out.service, out.error
                if rec.status == "STARTING":
                    rec.status = "STARTED"
        if current:
            self._objects_do(rec, gen, "settle_pods", out.error)
        elif out.service is not None:
            out.service.stop()
        return current

    def _run_start(self, rec: VersionRecord, gen: int, ip: str, config: dict) -> None:
        self._objects_do(rec, gen, "create", ip, config)
        self._settle(rec, gen, self._serve(rec, gen, ip, config, self.status_timeout))

    def stop(self, name: str) -> VersionRecord:
        """KRE's ``Stop``: only from STARTED; STOPPING, then the processes and objects go."""
        with self.lock:
            rec = self.get(name)
            if rec.status != "STARTED":
                raise ValueError("the version must be started before stopping")
            rec.status = "STOPPING"
            rec.generation += 1
            gen, svc, rec.service = rec.generation, rec.service, None
            answer = _snapshot(rec)
        self._spawn(self._run_stop, rec, gen, svc)
        return answer

    def _run_stop(self, rec: VersionRecord, gen: int, svc: Any) -> None:
        if svc is not None:
            svc.stop()
        self._objects_do(rec, gen, "delete")  # the version is stopped even if one is missing
        with self.lock:
            if self._current(rec, gen):
                rec.ip, rec.status = None, "STOPPED"

    # -- publish ------------------------------------------------------------------------------

    def publish(self, user_id: str, name: str) -> VersionRecord:
        """KRE's ``Publish``: only from STARTED; the previously published goes back to STARTED."""
        with self.lock:
            rec = self.get(name)
            if rec.status != "STARTED":
                raise ValueError("the version must be started before publishing")
            prev = self.published()
            if self.objects is not None:
                before = (prev.name, prev.ip or "") if prev is not None else None
                self.objects.publish(rec.name, rec.ip or "", before)
            if prev is not None:
                prev.status, prev.publication_date, prev.publication_author = "STARTED", None, None
            rec.status = "PUBLISHED"
            rec.publication_date = datetime.now(timezone.utc)
            rec.publication_author = user_id
            return rec

    def unpublish(self, name: str) -> VersionRecord:
        """KRE's ``Unpublish``: only from PUBLISHED, back to STARTED."""
        with self.lock:
            rec = self.get(name)
            if rec.status != "PUBLISHED":
                raise ValueError("the version must be published before unpublishing")
            if self.objects is not None:
                self.objects.unpublish(rec.name, rec.ip or "")
            rec.status, rec.publication_date, rec.publication_author = "STARTED", None, None
            return rec

    # -- config -------------------------------------------------------------------------------

    def update_config(self, name: str, values: list[dict[str, str]]) -> VersionRecord:
        """KRE's ``UpdateVersionConfig``: a started version's pods restart with the new values
        before the answer (the k8s-manager's ``restartPodsSync``, waited for up to
        :attr:`update_timeout` s); the new config is saved only if that restart succeeded.

        Raises:
            ValueError: the checks' messages, or the k8s-manager's gRPC error when the restart
                failed or timed out (the old config is kept).
        """
        with self.lock:
            rec = self.get(name)
            known = {c["key"] for c in rec.config_vars}
            if any(v["key"] not in known for v in values):
                raise ValueError("version config contains an unknown key")
            new = {v["key"]: v["value"] for v in values}
            cfg = [{**c, "value": new.get(c["key"], c["value"])} for c in rec.config_vars]
            if rec.status not in ("STARTED", "PUBLISHED"):
                rec.config_vars = cfg  # no pods to restart
                return _snapshot(rec)
            if any(c["value"] == "" for c in cfg):
                raise ValueError("config can't be incomplete for started version")
            assert rec.ip is not None
            rec.generation += 1
            gen, ip, old, rec.service = rec.generation, rec.ip, rec.service, None
        config = {c["key"]: c["value"] for c in cfg}
        self._objects_do(rec, gen, "replace_config", config)
        self._objects_do(rec, gen, "restart_pods")
        if old is not None:  # like deleting the pods: the new ones come up with the new env
            old.stop()
        out = self._serve(rec, gen, ip, config, self.update_timeout)
        self._settle(rec, gen, out)
        with self.lock:
            if out.error:
                raise ValueError(_restart_error(out))
            rec.config_vars = cfg  # versionRepo.Update runs only after UpdateConfig succeeded
            return _snapshot(rec)

    # -- threads and shutdown -----------------------------------------------------------------

    def _spawn(self, fn: Any, *args: Any) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True, name=f"kai-{fn.__name__}")
        self._threads.append(t)
        t.start()

    def close(self) -> None:
        """Stop every served version (no orphan processes) and wait for background work."""
        deadline = time.monotonic() + self.status_timeout
        with self.lock:
            self._closing = True  # makes every piece of background work stale
            for v in self.versions.values():
                v.generation += 1
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        with self.lock:
            services = [v.service for v in self.versions.values() if v.service is not None]
            for v in self.versions.values():
                v.service = None
        for svc in services:
            try:
                svc.stop()
            except Exception as exc:  # keep stopping the others
                _log.warning("stopping a served version: %s", exc)
