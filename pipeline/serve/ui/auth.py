"""Sign-in and CSRF protection for the web UI.

**Sign-in.** The login form takes the admin token (``REPRINT_ADMIN_TOKEN``), or the read token
(``REPRINT_API_TOKEN``) for read-only access where reads need one. The browser never keeps a token: it gets a
session cookie ``reprint_session`` whose value is ``base64url(payload) "." base64url(HMAC-SHA256(key, payload))``,
payload ``{"sid": 128 random bits, "role": "admin" | "read" | null, "name": ..., "exp": unix time}``. The key is
derived from the configured tokens (``HMAC-SHA256("reprint-ui-session-v1", admin token NUL read token)``), so every
uvicorn worker process verifies the same sessions without shared state, nothing secret is in the cookie (an HMAC
output does not reveal its key), and changing a token signs every session out. The cookie is ``HttpOnly``
(scripts cannot read it), ``SameSite=Strict`` (the browser never sends it with a request started by another
site, not even a top-level navigation), ``Secure`` when the UI is served over HTTPS, ``Path=/``, and expires after
``SESSION_SECONDS``; the expiry inside the signed payload is checked too, so a kept cookie is no longer valid.

**CSRF: a synchronizer token, kept stateless.** Every form carries a hidden ``csrf`` field whose value is
``HMAC-SHA256(key, "csrf:" + sid)``: bound to the session, recomputed rather than stored. A visitor who has not
signed in gets a session without a role, so the login form is protected as well (no login CSRF). A POST is
accepted only when its session cookie verifies and its ``csrf`` field equals that session's token
(``hmac.compare_digest``); a request the browser labels ``Sec-Fetch-Site: cross-site`` is refused before that.
Anything else is a 403. Signing in issues a new sid (a session id planted before sign-in is worthless after
it); signing out replaces the session with a new anonymous one. GET requests never change anything.

With no token configured there is nothing to sign in to: no cookie is set, pages show no actions, and every
POST is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from pipeline.settings import Settings

COOKIE = "reprint_session"
SESSION_SECONDS = 12 * 3600
#: A session is re-issued when less than this is left of it (rolling expiry for someone who keeps working).
RENEW_BELOW = SESSION_SECONDS // 2
ROLES = ("admin", "read")


@dataclass(frozen=True, slots=True)
class Session:
    sid: str
    role: str | None
    name: str
    exp: int

    @property
    def admin(self) -> bool:
        return self.role == "admin"

    @property
    def signed_in(self) -> bool:
        return self.role in ROLES


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sessions:
    """Issues, verifies and protects sessions for one app (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.admin_token = settings.admin_token or None
        self.read_token = settings.api_token or None
        self.enabled = bool(self.admin_token or self.read_token)
        material = f"{self.admin_token or ''}\0{self.read_token or ''}".encode()
        self._key = hmac.new(b"reprint-ui-session-v1", material, hashlib.sha256).digest()

    # --- the cookie -------------------------------------------------------------------------------------------------
    def _sign(self, payload: bytes) -> str:
        return _b64(hmac.new(self._key, payload, hashlib.sha256).digest())

    def encode(self, session: Session) -> str:
        payload = json.dumps({"sid": session.sid, "role": session.role, "name": session.name, "exp": session.exp},
                             separators=(",", ":")).encode()
        return f"{_b64(payload)}.{self._sign(payload)}"

    def decode(self, value: str | None, now: float | None = None) -> Session | None:
        """The session a cookie value holds, or None when it is missing, forged, malformed or expired."""
        if not value or not self.enabled or value.count(".") != 1 or len(value) > 1024:
            return None
        body, signature = value.split(".")
        try:
            payload = _unb64(body)
        except (ValueError, TypeError):
            return None
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            data: dict[str, Any] = json.loads(payload)
            session = Session(str(data["sid"]), data["role"] if data["role"] in ROLES else None,
                              str(data.get("name") or ""), int(data["exp"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.exp > (now if now is not None else time.time()) else None

    def new(self, role: str | None = None, name: str = "") -> Session:
        return Session(secrets.token_urlsafe(16), role, name, int(time.time()) + SESSION_SECONDS)

    def current(self, request: Request) -> Session | None:
        return self.decode(request.cookies.get(COOKIE))

    def set_cookie(self, response: Response, request: Request, session: Session) -> None:
        response.set_cookie(COOKIE, self.encode(session), max_age=max(0, session.exp - int(time.time())), path="/",
                            httponly=True, samesite="strict", secure=request.url.scheme == "https")

    def ensure(self, request: Request) -> tuple[Session | None, bool]:
        """(the request's session, whether the response must set it): a new anonymous one when it has none, a
        renewed one when it is running out. None when sign-in is disabled."""
        if not self.enabled:
            return None, False
        session = self.current(request)
        if session is None:
            return self.new(), True
        if session.exp - time.time() < RENEW_BELOW:
            return Session(session.sid, session.role, session.name, int(time.time()) + SESSION_SECONDS), True
        return session, False

    # --- tokens -----------------------------------------------------------------------------------------------------
    def role_for(self, token: str) -> str | None:
        """The role a token given in the login form grants (compared in constant time), or None."""
        given = token.strip().encode()
        if not given:
            return None
        if self.admin_token and hmac.compare_digest(given, self.admin_token.encode()):
            return "admin"
        if self.read_token and hmac.compare_digest(given, self.read_token.encode()):
            return "read"
        return None

    def csrf_token(self, session: Session | None) -> str:
        """The token every form of this session carries ('' when there is no session)."""
        if session is None:
            return ""
        return _b64(hmac.new(self._key, f"csrf:{session.sid}".encode(), hashlib.sha256).digest())

    def check_post(self, request: Request, form_token: str | None) -> tuple[Session | None, str | None]:
        """(session, None) when a POST may proceed; (None, why not) otherwise (answer 403)."""
        if not self.enabled:
            return None, "sign-in is disabled on this server (no REPRINT_ADMIN_TOKEN is set)"
        if request.headers.get("sec-fetch-site") == "cross-site":
            return None, "refused: the form was sent from another site"
        session = self.current(request)
        if session is None:
            return None, "no valid session: reload the page and try again"
        if not form_token or not hmac.compare_digest(form_token.encode(), self.csrf_token(session).encode()):
            return None, "the form's CSRF token is missing or wrong: reload the page and try again"
        return session, None


__all__ = ["COOKIE", "SESSION_SECONDS", "Session", "Sessions"]
