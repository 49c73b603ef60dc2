"""Dashboard access rules: the credential, signed sessions (tampering, expiry, logout), CSRF tokens, the login limit."""

from __future__ import annotations

import pytest

from interactive_gym.server.admin.auth import (
    MAX_SESSIONS,
    PASSWORD_ENV,
    SESSION_MAX_AGE_S,
    AdminAuth,
    Credential,
    credential_from,
)

NOW = 1_700_000_000.0


def auth(secret: str = "correct horse") -> AdminAuth:
    return AdminAuth(Credential(secret, from_env=True), key=b"k" * 32)


def test_password_from_environment_and_a_random_token_without_it() -> None:
    assert credential_from({PASSWORD_ENV: "s3cret"}) == Credential("s3cret", from_env=True)
    first, second = credential_from({}), credential_from({})
    assert not first.from_env and len(first.secret) >= 20
    assert first.secret != second.secret  # never a default: each start makes its own token


@pytest.mark.parametrize("bad", ["", "   ", "x" * 257])
def test_an_unusable_password_fails_at_start_up_saying_what_to_change(bad: str) -> None:
    with pytest.raises(ValueError, match=PASSWORD_ENV):
        credential_from({PASSWORD_ENV: bad})


def test_the_secret_never_shows_in_repr() -> None:
    assert "s3cret" not in repr(Credential("s3cret", from_env=True))


@pytest.mark.parametrize("presented", ["correct horse", "correct hors", "correct horsee", "", None, 5, ["x"]])
def test_check_password_accepts_only_the_exact_text(presented: object) -> None:
    assert auth().check_password(presented) is (presented == "correct horse")


def test_a_session_cookie_proves_its_session() -> None:
    a = auth()
    cookie = a.open_session(NOW)
    assert a.session_of(cookie, NOW + 1) is not None


@pytest.mark.parametrize("position", range(0, 60, 3))
def test_any_changed_character_of_the_cookie_is_refused(position: int) -> None:
    a = auth()
    cookie = a.open_session(NOW)
    position %= len(cookie)
    flipped = "A" if cookie[position] != "A" else "B"
    tampered = cookie[:position] + flipped + cookie[position + 1:]
    assert a.session_of(tampered, NOW + 1) is None


def test_a_cookie_signed_by_another_server_start_is_refused() -> None:
    other = AdminAuth(Credential("correct horse", from_env=True), key=b"z" * 32)
    assert auth().session_of(other.open_session(NOW), NOW) is None


@pytest.mark.parametrize("cookie", [None, "", "abc", "a.b.c", "a.b.c.d.e", "x" * 500])
def test_malformed_cookies_are_refused(cookie: str | None) -> None:
    assert auth().session_of(cookie, NOW) is None


def test_sessions_expire_and_logout_revokes_at_once() -> None:
    a = auth()
    cookie = a.open_session(NOW)
    assert a.session_of(cookie, NOW + SESSION_MAX_AGE_S - 1) is not None
    assert a.session_of(cookie, NOW + SESSION_MAX_AGE_S) is None
    again = a.open_session(NOW)
    a.close_session(again)
    assert a.session_of(again, NOW) is None


def test_the_session_table_stays_bounded() -> None:
    a = auth()
    cookies = [a.open_session(NOW + i) for i in range(MAX_SESSIONS + 10)]
    assert len(a._sessions) == MAX_SESSIONS
    assert a.session_of(cookies[-1], NOW + MAX_SESSIONS + 10) is not None
    assert a.session_of(cookies[0], NOW + MAX_SESSIONS + 10) is None  # the oldest made room


def test_csrf_token_belongs_to_its_session() -> None:
    a = auth()
    one = a.session_of(a.open_session(NOW), NOW)
    two = a.session_of(a.open_session(NOW), NOW)
    assert one and two
    assert a.csrf_ok(one, a.csrf_token(one))
    assert not a.csrf_ok(one, a.csrf_token(two))
    assert not a.csrf_ok(one, None)
    assert not a.csrf_ok(one, "")


def test_login_attempts_are_limited_per_client_address() -> None:
    a = auth()
    allowed = [a.login_allowed("10.0.0.1", NOW) for _ in range(8)]
    assert allowed == [True] * 5 + [False] * 3
    assert a.login_allowed("10.0.0.2", NOW)  # another address has its own bucket
    assert not a.login_allowed("10.0.0.1", NOW + 1)
    assert a.login_allowed("10.0.0.1", NOW + 5.1)  # one more every five seconds
