"""The resolvers of KRE's admin API (:mod:`krtlab.deploy.standin.kre_schema`) over a
:class:`Runtime`, executed by graphql-core (:mod:`krtlab.deploy.standin.gql`).

The same resolvers serve KRE 7 (every call names the runtime: ``runtimeId``, ``runtime(id:)``)
and KRE 3 (no runtimes: the arguments are absent, the one runtime is implied); each schema
decides which arguments exist and are required.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from krtlab.deploy.standin.auth import Auth, User, _rfc3339
from krtlab.deploy.standin.gql import GraphQLApi, GraphQLError
from krtlab.deploy.standin.kre_schema import KRE_VERSIONS, SCHEMAS
from krtlab.deploy.standin.krt_check import KrtValidationError
from krtlab.deploy.standin.lifecycle import Runtime, VersionRecord

__all__ = ["build_schema"]


# the gqlgen each KRE version's admin API is built with (engine/admin-api/go.mod)
GQLGEN = {"3": "0.11.3", "7": "0.17.4"}


class _Api:
    def __init__(self, runtime: Runtime, auth: Auth, entrypoint: str, base_url: str,
                 namespace: str) -> None:  # fmt: skip
        self.runtime, self.auth, self.entrypoint, self.base_url = (
            runtime, auth, entrypoint, base_url
        )  # fmt: skip
        self.namespace = namespace

    # -- views ----------------------------------------------------------------------------------

    def user(self, user_id: str | None) -> dict[str, Any] | None:
        u = self.auth.users.get(user_id or "")
        if u is None:
            return None
        return {
            "id": u.id, "email": u.email, "accessLevel": u.access_level,
            "creationDate": _rfc3339(u.creation_date), "lastActivity": None,
            "activeSessions": 1, "apiTokens": [dict(t) for t in u.tokens],
        }  # fmt: skip

    def version(self, rec: VersionRecord, viewer: User) -> dict[str, Any]:
        with self.runtime.lock:  # a consistent snapshot while background threads move it on
            return {
                "id": rec.id, "name": rec.name, "description": rec.description,
                "status": rec.status, "creationDate": _rfc3339(rec.creation_date),
                "creationAuthor": self.user(rec.creation_author),
                "publicationDate": _rfc3339(rec.publication_date),
                "publicationAuthor": self.user(rec.publication_author),
                # Node.Status is `bson:"-"` in KRE 7: queries answer "" (only the
                # watchNodeStatus subscription, fed by the Pods, has it)
                "workflows": [
                    {**wf, "nodes": [{**n, "status": ""} for n in wf["nodes"]],
                     "edges": [dict(e) for e in wf["edges"]]}
                    for wf in rec.workflows
                ],
                # filterConfigVars: users who cannot edit versions do not see the values
                "config": {
                    "vars": [dict(c) for c in rec.config_vars] if viewer.can_edit_versions()
                    else [],
                    "completed": rec.completed,
                },
                "hasDoc": rec.has_doc, "errors": list(rec.errors),
            }  # fmt: skip

    def runtime_view(self, viewer: User) -> dict[str, Any]:
        rt = self.runtime

        def published() -> dict[str, Any] | None:
            rec = rt.published()
            return None if rec is None else self.version(rec, viewer)

        return {
            "id": rt.id, "name": rt.name, "description": "krtlab local runtime",
            "creationDate": _rfc3339(rt.creation_date),
            # KRE's runtimeResolver: the admin API's own k8s namespace, in 3 and 7 alike
            "measurementsUrl": f"{self.base_url}/measurements/{self.namespace}",
            "databaseUrl": f"{self.base_url}/database/{self.namespace}",
            "entrypointAddress": self.entrypoint, "publishedVersion": published,
            "creationAuthor": lambda: self.user(next(iter(self.auth.users), None)),
        }  # fmt: skip

    def _runtime_for(self, runtime_id: str | None) -> Runtime:
        """The runtime a call names (KRE 7), or the only one (KRE 3: ``runtime_id`` None)."""
        if runtime_id is not None and runtime_id != self.runtime.id:
            raise ValueError("error version not found")
        return self.runtime

    # -- resolvers ------------------------------------------------------------------------------

    def q_me(self, ctx: User) -> dict[str, Any] | None:
        return self.user(ctx.id)

    def q_runtime(self, ctx: User, id: str | None = None) -> dict[str, Any]:
        if id is not None and id != self.runtime.id:
            raise ValueError("error runtime not found")
        return self.runtime_view(ctx)

    def q_runtimes(self, ctx: User) -> list[dict[str, Any]]:
        return [self.runtime_view(ctx)]

    def q_version(self, ctx: User, name: str, runtimeId: str | None = None) -> dict[str, Any]:
        return self.version(self._runtime_for(runtimeId).get(name), ctx)

    def q_versions(self, ctx: User, runtimeId: str | None = None) -> list[dict[str, Any]]:
        if runtimeId is not None and runtimeId != self.runtime.id:
            return []  # KRE reads the (empty) database of an unknown runtime
        rt = self.runtime
        with rt.lock:
            recs = sorted(rt.versions.values(), key=lambda v: v.creation_date)
        return [self.version(r, ctx) for r in recs]

    def m_create(self, ctx: User, input: dict[str, Any]) -> dict[str, Any]:
        ctx.check_edit_versions()
        if input.get("runtimeId", self.runtime.id) != self.runtime.id:
            raise ValueError("error runtime repo GetById: error runtime not found")
        data = input["file"]
        try:
            rec = self.runtime.create(ctx.id, data if isinstance(data, bytes) else bytes(data))
        except KrtValidationError as exc:
            raise GraphQLError(
                str(exc), extensions={"code": "krt_validation_error", "details": exc.details}
            ) from None
        return self.version(rec, ctx)

    def _transition(self, ctx: User, input: dict[str, Any], action: str) -> dict[str, Any]:
        ctx.check_edit_versions()
        rt, name = self._runtime_for(input.get("runtimeId")), input["versionName"]
        if action == "start":
            rec = rt.start(name)
        elif action == "stop":
            rec = rt.stop(name)
        elif action == "publish":
            rec = rt.publish(ctx.id, name)
        else:
            rec = rt.unpublish(name)
        return self.version(rec, ctx)

    def m_update_config(self, ctx: User, input: dict[str, Any]) -> dict[str, Any]:
        rt = self._runtime_for(input.get("runtimeId"))
        rt.get(input["versionName"])  # KRE's resolver calls GetByName before the permission check
        ctx.check_edit_versions()
        rec = rt.update_config(input["versionName"], input["configurationVariables"])
        return self.version(rec, ctx)

    def m_token(self, ctx: User, input: dict[str, Any]) -> str:
        return self.auth.new_token(ctx, input["name"])


def build_schema(runtime: Runtime, auth: Auth, entrypoint: str, base_url: str, *,
                 kre: str = "7", namespace: str = "kre") -> GraphQLApi:  # fmt: skip
    """The executable schema of KRE version ``kre`` (one of :data:`KRE_VERSIONS`), answering as
    that version's gqlgen does; the resolver context is the signed-in :class:`User`."""
    if kre not in KRE_VERSIONS:
        raise ValueError(f"no KRE {kre!r} schema: use one of {', '.join(KRE_VERSIONS)}")
    api = _Api(runtime, auth, entrypoint, base_url, namespace)
    resolvers: dict[str, Callable[..., Any]] = {
        "Query.me": api.q_me,
        "Query.runtime": api.q_runtime,
        "Query.runtimes": api.q_runtimes,
        "Query.version": api.q_version,
        "Query.versions": api.q_versions,
        "Mutation.createVersion": api.m_create,
        "Mutation.startVersion": lambda c, input: api._transition(c, input, "start"),
        "Mutation.stopVersion": lambda c, input: api._transition(c, input, "stop"),
        "Mutation.publishVersion": lambda c, input: api._transition(c, input, "publish"),
        "Mutation.unpublishVersion": lambda c, input: api._transition(c, input, "unpublish"),
        "Mutation.updateVersionConfiguration": api.m_update_config,
        "Mutation.generateApiToken": api.m_token,
    }
    if kre == "3":
        del resolvers["Query.runtimes"]  # KRE 3 has no runtimes
    return GraphQLApi(SCHEMAS[kre], resolvers, gqlgen=GQLGEN[kre])
