"""The resolvers of KRE 7's admin API (:mod:`krtlab.deploy.standin.kre_schema`) over a
:class:`Runtime`, executed by graphql-core (:mod:`krtlab.deploy.standin.gql`)."""

from __future__ import annotations

from typing import Any

from krtlab.deploy.standin.auth import Auth, User, _rfc3339
from krtlab.deploy.standin.gql import GraphQLApi, GraphQLError
from krtlab.deploy.standin.kre_schema import SDL
from krtlab.deploy.standin.krt_check import KrtValidationError
from krtlab.deploy.standin.lifecycle import Runtime, VersionRecord

__all__ = ["build_schema"]


class _Api:
    def __init__(self, runtime: Runtime, auth: Auth, entrypoint: str, base_url: str) -> None:
        self.runtime, self.auth, self.entrypoint, self.base_url = (
            runtime, auth, entrypoint, base_url
        )  # fmt: skip

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
            "measurementsUrl": f"{self.base_url}/measurements/{rt.id}",
            "databaseUrl": f"{self.base_url}/database/{rt.id}",
            "entrypointAddress": self.entrypoint, "publishedVersion": published,
            "creationAuthor": lambda: self.user(next(iter(self.auth.users), None)),
        }  # fmt: skip

    def _runtime_for(self, runtime_id: str) -> Runtime:
        if runtime_id != self.runtime.id:
            raise ValueError("error version not found")
        return self.runtime

    # -- resolvers ------------------------------------------------------------------------------

    def q_me(self, ctx: User) -> dict[str, Any] | None:
        return self.user(ctx.id)

    def q_runtime(self, ctx: User, id: str) -> dict[str, Any]:
        if id != self.runtime.id:
            raise ValueError("error runtime not found")
        return self.runtime_view(ctx)

    def q_runtimes(self, ctx: User) -> list[dict[str, Any]]:
        return [self.runtime_view(ctx)]

    def q_version(self, ctx: User, name: str, runtimeId: str) -> dict[str, Any]:
        return self.version(self._runtime_for(runtimeId).get(name), ctx)

    def q_versions(self, ctx: User, runtimeId: str) -> list[dict[str, Any]]:
        if runtimeId != self.runtime.id:
            return []  # KRE reads the (empty) database of an unknown runtime
        rt = self.runtime
        with rt.lock:
            recs = sorted(rt.versions.values(), key=lambda v: v.creation_date)
        return [self.version(r, ctx) for r in recs]

    def m_create(self, ctx: User, input: dict[str, Any]) -> dict[str, Any]:
        ctx.check_edit_versions()
        if input["runtimeId"] != self.runtime.id:
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
        rt, name = self._runtime_for(input["runtimeId"]), input["versionName"]
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
        rt = self._runtime_for(input["runtimeId"])
        rt.get(input["versionName"])  # KRE's resolver calls GetByName before the permission check
        ctx.check_edit_versions()
        rec = rt.update_config(input["versionName"], input["configurationVariables"])
        return self.version(rec, ctx)

    def m_token(self, ctx: User, input: dict[str, Any]) -> str:
        return self.auth.new_token(ctx, input["name"])


def build_schema(runtime: Runtime, auth: Auth, entrypoint: str, base_url: str) -> GraphQLApi:
    """The executable schema; the resolver context is the signed-in :class:`User`."""
    api = _Api(runtime, auth, entrypoint, base_url)
    return GraphQLApi(
        SDL,
        {
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
        },
    )
