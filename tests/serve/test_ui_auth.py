"""The UI's sessions and CSRF tokens: what verifies and what does not."""

from __future__ import annotations

import time

from pipeline.serve.ui.auth import Session, Sessions
from pipeline.settings import Settings


def sessions(admin: str | None = "admin-token-1", read: str | None = None) -> Sessions:
    return Sessions(Settings(database_url="sqlite:///unused.db", admin_token=admin, api_token=read))


def test_a_session_survives_the_round_trip_and_holds_no_token() -> None:
    s = sessions()
    session = s.new("admin", "editor")
    value = s.encode(session)
    assert "admin-token-1" not in value
    assert s.decode(value) == session


def test_forged_tampered_and_expired_sessions_are_refused() -> None:
    s = sessions()
    value = s.encode(s.new("admin", "editor"))
    body, sig = value.split(".")
    anonymous = s.encode(s.new(None)).split(".")[0]
    assert s.decode(f"{anonymous}.{sig}") is None, "another payload under this signature"
    assert s.decode(body + "." + sig[:-2] + "AA") is None
    assert s.decode(value + ".x") is None and s.decode("") is None and s.decode("garbage") is None
    assert sessions(admin="another-token").decode(value) is None, "a changed token signs every session out"
    expired = Session("sid", "admin", "editor", int(time.time()) - 1)
    assert s.decode(s.encode(expired)) is None


def test_csrf_tokens_are_bound_to_the_session() -> None:
    s = sessions()
    a, b = s.new(), s.new()
    assert s.csrf_token(a) != s.csrf_token(b)
    assert s.csrf_token(a) == s.csrf_token(Session(a.sid, "admin", "x", a.exp)), "signing in keeps no old sid"
    assert s.csrf_token(None) == ""


def test_tokens_grant_their_roles() -> None:
    s = sessions(read="read-token-2")
    assert s.role_for("admin-token-1") == "admin"
    assert s.role_for(" read-token-2 ") == "read"
    assert s.role_for("admin-token-") is None and s.role_for("") is None
    assert not sessions(admin=None).enabled
