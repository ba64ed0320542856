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
import socket
import string
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from krtlab.deploy.standin.krt_check import check_content, check_sync
from krtlab.deploy.standin.objects import VersionObjects

__all__ = ["Runtime", "VersionRecord"]

_log = logging.getLogger("krtlab.standin.kai")
GRPC_PORT, WEB_PORT = 9000, 8080


def _snapshot(rec: VersionRecord) -> VersionRecord:
    """The version as the mutation answers it, before background work moves it on."""
    return replace(
        rec,
        workflows=copy.deepcopy(rec.workflows),
        config_vars=copy.deepcopy(rec.config_vars),
        errors=list(rec.errors),
        service=None,
    )


def _id5() -> str:
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(5))


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
        self._closing = False

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
        for wf in krt["Workflows"] or []:
            nodes = [{"id": _id5(), "name": n, "status": "STOPPED"} for n in wf["Sequential"]]
            edges = [
                {"id": _id5(), "fromNode": a["id"], "toNode": b["id"]}
                for a, b in itertools.pairwise(nodes)
            ]
            out.append({"id": _id5(), "name": wf["Name"], "nodes": nodes, "edges": edges})
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
            rec.status = "STARTING"
            rec.ip = self._free_ip()
            self._set_nodes(rec, "STARTING")
            answer = _snapshot(rec)
        self._spawn(self._run_start, rec)
        return answer

    def _free_ip(self) -> str:
        used = {v.ip for v in self.versions.values() if v.ip}
        for n in range(2, 255):
            ip = f"127.0.0.{n}"
            if ip in used:
                continue
            with socket.socket() as s:  # skip an address whose :9000 is taken by someone else
                try:
                    s.bind((ip, GRPC_PORT))
                except OSError:
                    continue
            return ip
        raise RuntimeError("no free loopback address for the version")

    @staticmethod
    def _set_nodes(rec: VersionRecord, status: str) -> None:
        for wf in rec.workflows:
            for node in wf["nodes"]:
                node["status"] = status

    def _manifest(self, rec: VersionRecord) -> Any:
        from krtlab.bundle.load import load_project

        return load_project(rec.krt_path).manifest

    def _serve(self, rec: VersionRecord) -> tuple[Any, str]:
        """Serve ``rec`` on its IP, waiting at most ``status_timeout`` (KRE's versionStatusTimeout).

        Returns ``(service or None, why it failed)``; a serve finishing after the timeout is
        stopped at once, so nothing keeps running unaccounted for.
        """
        from krtlab.runtime.serve import serve

        box: dict[str, Any] = {}
        gave_up = threading.Event()

        def run() -> None:
            try:
                svc = serve(
                    rec.krt_path, host=rec.ip or "127.0.0.1", port=GRPC_PORT,
                    web_port=WEB_PORT, config=rec.config, quiet=True,
                )  # fmt: skip
            except Exception as exc:
                box["error"] = f"{type(exc).__name__}: {exc}"
                return
            with self.lock:
                late = gave_up.is_set()
                if not late:
                    box["svc"] = svc
            if late:
                svc.stop()

        t = threading.Thread(target=run, daemon=True, name=f"kai-serve-{rec.name}")
        self._threads.append(t)
        t.start()
        t.join(self.status_timeout)
        with self.lock:
            if "svc" not in box and "error" not in box:
                gave_up.set()
                return None, f"not ready after {self.status_timeout:g}s"
            return box.get("svc"), box.get("error", "")

    def _settle(self, rec: VersionRecord, svc: Any, error: str, expected: tuple[str, ...]) -> None:
        """Record a serve's outcome, unless the version moved on (then stop what was served)."""
        if error:  # KRE logs the k8s-manager's error and still says STARTED
            _log.warning("version %s did not start: %s", rec.name, error)
        with self.lock:
            moved_on = self._closing or rec.status not in expected
            if not moved_on:
                rec.service, rec.start_error = svc, error
                self._set_nodes(rec, "ERROR" if error else "STARTED")
                if rec.status == "STARTING":
                    rec.status = "STARTED"
        if moved_on and svc is not None:
            svc.stop()

    def _run_start(self, rec: VersionRecord) -> None:
        assert rec.ip is not None
        try:
            if self.objects is not None:
                self.objects.create(self._manifest(rec), rec.ip, rec.config)
        except Exception as exc:
            _log.warning("creating objects of %s: %s", rec.name, exc)
        svc, error = self._serve(rec)
        self._settle(rec, svc, error, ("STARTING",))

    def stop(self, name: str) -> VersionRecord:
        """KRE's ``Stop``: only from STARTED; STOPPING, then the processes and objects go."""
        with self.lock:
            rec = self.get(name)
            if rec.status != "STARTED":
                raise ValueError("the version must be started before stopping")
            rec.status = "STOPPING"
            answer = _snapshot(rec)
        self._spawn(self._run_stop, rec)
        return answer

    def _run_stop(self, rec: VersionRecord) -> None:
        svc, rec.service = rec.service, None
        if svc is not None:
            svc.stop()
        if self.objects is not None:
            try:
                self.objects.delete(self._manifest(rec))
            except Exception as exc:  # the version is stopped even if an object is missing
                _log.warning("deleting objects of %s: %s", rec.name, exc)
        with self.lock:
            self._set_nodes(rec, "STOPPED")
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
        """KRE's ``UpdateVersionConfig``; a started version restarts with the new values."""
        with self.lock:
            rec = self.get(name)
            known = {c["key"] for c in rec.config_vars}
            if any(v["key"] not in known for v in values):
                raise ValueError("version config contains an unknown key")
            new = {v["key"]: v["value"] for v in values}
            cfg = [{**c, "value": new.get(c["key"], c["value"])} for c in rec.config_vars]
            started = rec.status in ("STARTED", "PUBLISHED")
            if started and any(c["value"] == "" for c in cfg):
                raise ValueError("config can't be incomplete for started version")
            rec.config_vars = cfg
            if started:
                if self.objects is not None:
                    self.objects.replace_config(self._manifest(rec), rec.config)
                self._set_nodes(rec, "STARTING")
                answer = _snapshot(rec)
                self._spawn(self._restart, rec)
                return answer
            return rec

    def _restart(self, rec: VersionRecord) -> None:
        # like k8s restarting the pods: the served processes come back with the new env
        with self.lock:
            old, rec.service = rec.service, None
        if old is not None:
            old.stop()
        svc, error = self._serve(rec)
        self._settle(rec, svc, error, ("STARTED", "PUBLISHED"))

    # -- threads and shutdown -----------------------------------------------------------------

    def _spawn(self, fn: Any, *args: Any) -> None:
        t = threading.Thread(target=fn, args=args, daemon=True, name=f"kai-{fn.__name__}")
        self._threads.append(t)
        t.start()

    def close(self) -> None:
        """Stop every served version (no orphan processes) and wait for background work."""
        deadline = time.monotonic() + self.status_timeout
        with self.lock:
            self._closing = True
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
