"""Users, API tokens and JWT sessions of the admin API stand-in (KRE's auth, in memory).

KRE exchanges an API token for an HS256 JWT (``sub`` = user id, ``exp``) at
``POST /api/v1/auth/token/signin`` and then checks the ``Authorization: Bearer`` JWT and that its
session is active. RBAC is casbin's policy: VIEWER views, MANAGER also edits versions, ADMIN too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = ["ACCESS_LEVELS", "Auth", "User"]

ACCESS_LEVELS = ("VIEWER", "MANAGER", "ADMIN")
SESSION_SECONDS = 30 * 24 * 3600  # KRE's default sessionLifetimeInDays is 30


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class User:
    """One admin API user."""

    id: str
    email: str
    access_level: str
    creation_date: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    tokens: list[dict[str, Any]] = field(default_factory=list)

    def can_edit_versions(self) -> bool:
        return self.access_level in ("MANAGER", "ADMIN")

    def check_edit_versions(self) -> None:
        """Raise casbin's refusal when the user may not edit versions."""
        if not self.can_edit_versions():
            raise PermissionError("you are not allowed to edit versions")


class Auth:
    """In-memory users, API tokens (stored hashed, like KRE's md5) and JWT sessions."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)
        self.users: dict[str, User] = {}
        self._tokens: dict[str, str] = {}  # sha256(token) -> user id
        self._sessions: set[str] = set()
        self._lock = threading.Lock()

    def add_user(self, email: str, access_level: str = "MANAGER") -> User:
        if access_level not in ACCESS_LEVELS:
            raise ValueError(f"unknown access level {access_level!r}: use one of {ACCESS_LEVELS}")
        user = User(secrets.token_hex(12), email, access_level)
        with self._lock:
            self.users[user.id] = user
        return user

    def new_token(self, user: User, name: str = "krtlab") -> str:
        """A new API token for ``user`` (hex, like KRE's encrypted user id plus salt)."""
        token = secrets.token_hex(32)
        with self._lock:
            self._tokens[hashlib.sha256(token.encode()).hexdigest()] = user.id
            user.tokens.append(
                {"id": secrets.token_hex(12), "name": name,
                 "creationDate": _rfc3339(datetime.now(timezone.utc)), "lastActivity": None}
            )  # fmt: skip
        return token

    def sign_in(self, api_token: str) -> str | None:
        """The JWT for a valid API token (a new session), else None."""
        with self._lock:
            user_id = self._tokens.get(hashlib.sha256(api_token.encode()).hexdigest())
        if user_id is None:
            return None
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = {"exp": int(time.time()) + SESSION_SECONDS, "sub": user_id}
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = hmac.new(self._secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
        jwt = f"{header}.{body}.{_b64(sig)}"
        with self._lock:
            self._sessions.add(jwt)
        return jwt

    def check(self, authorization: str) -> tuple[User | None, str]:
        """The user of a ``Bearer <jwt>`` header, or None and the error code (KRE's httperrors)."""
        scheme, _, jwt = authorization.partition(" ")
        parts = jwt.split(".")
        if scheme != "Bearer" or len(parts) != 3:
            return None, "unauthorized"
        expect = hmac.new(self._secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256)
        try:
            good = hmac.compare_digest(_unb64(parts[2]), expect.digest())
            claims = json.loads(_unb64(parts[1]))
        except (ValueError, TypeError):
            return None, "unauthorized"
        if not good or not isinstance(claims, dict) or claims.get("exp", 0) < time.time():
            return None, "unauthorized"
        with self._lock:
            active = jwt in self._sessions
            user = self.users.get(str(claims.get("sub")))
        if not active or user is None:
            return None, "invalid_session"
        return user, ""


def _rfc3339(when: datetime | None) -> str | None:
    """Go's ``time.RFC3339`` rendering of a UTC time."""
    return None if when is None else when.strftime("%Y-%m-%dT%H:%M:%SZ")
