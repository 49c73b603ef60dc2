"""Who may open the dashboard: a password or a one-time token, a signed session cookie, CSRF tokens, and
a rate limit on login attempts. Pure: no I/O (the clock is passed in); the routes and the socket shell call it.

* **Credential.** ``INTERACTIVE_GYM_ADMIN_PASSWORD`` when set; otherwise a random token made when the server
  starts, printed once by the app's lifespan (never a default that could be guessed). Compared in constant time.
* **Session.** The cookie value is ``<session id>.<issued at>.<HMAC-SHA256>``, signed with a secret made at
  start-up (a restart logs everyone out, which is fine for one researcher). It expires after
  :data:`SESSION_MAX_AGE_S`; a logout revokes it at once.
* **CSRF.** The cookie is ``SameSite=Strict`` (a cross-site page's request carries no cookie), and every POST must
  also carry the session's own CSRF token (an HMAC of the session id) in the ``X-CSRF-Token`` header, which a
  cross-site page cannot read.
* **Login rate limit.** One token bucket per client address, reusing :class:`~interactive_gym.server.rate_limits.
  RateLimiter` with its own table: a person typing a password never reaches it; a guessing script does at once.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from interactive_gym.server.rate_limits import DEFAULT_CLASS, EventClass, RateLimiter

PASSWORD_ENV = "INTERACTIVE_GYM_ADMIN_PASSWORD"
COOKIE_NAME = "ig_admin"
CSRF_HEADER = "x-csrf-token"
SESSION_MAX_AGE_S = 12 * 3600.0
MAX_CREDENTIAL_CHARS = 256
MAX_SESSIONS = 64  # a researcher or two; more live sessions than this is a script logging in over and over
LOGIN_CLASSES: dict[str, EventClass] = {
    "login": EventClass(0.2, 5, ("login",), why=(
        "a person types the password a few times at most; five tries, then one every five seconds, makes "
        "guessing a random token hopeless")),
    DEFAULT_CLASS: EventClass(1, 1, (), why="unused: only logins are limited here"),
}


@dataclass(frozen=True)
class Credential:
    """What a login must present.

    Attributes:
        secret: The password or the one-time token.
        from_env: True for the environment's password; False for a token made at start-up (to print).
    """

    secret: str
    from_env: bool

    def __repr__(self) -> str:  # never in a log or a traceback
        return f"Credential(from_env={self.from_env}, secret=<hidden>)"


def credential_from(environ: Mapping[str, str]) -> Credential:
    """The dashboard credential: the environment's password, else a fresh random token.

    Raises:
        ValueError: if the variable is set but empty or too long (a config mistake, told at start-up).
    """
    value = environ.get(PASSWORD_ENV)
    if value is None:
        return Credential(secrets.token_urlsafe(18), from_env=False)
    if not value.strip() or len(value) > MAX_CREDENTIAL_CHARS:
        raise ValueError(f"{PASSWORD_ENV} must be a non-empty password of at most {MAX_CREDENTIAL_CHARS} "
                         "characters; unset it to get a one-time token printed at start-up")
    return Credential(value, from_env=True)


class AdminAuth:
    """Logins, sessions and CSRF tokens of one server run.

    Args:
        credential: What a login must present.
        key: The signing secret (random per server start unless a test passes one).

    Attributes:
        unauthorized: Requests refused for missing or wrong credentials, by route or event name.
    """

    def __init__(self, credential: Credential, key: bytes | None = None) -> None:
        self.credential = credential
        self._key = key or secrets.token_bytes(32)
        self._sessions: dict[str, float] = {}  # live session id -> issued at
        self._limiter = RateLimiter(LOGIN_CLASSES)
        self.unauthorized: Counter[str] = Counter()

    @classmethod
    def from_environment(cls) -> AdminAuth:
        return cls(credential_from(os.environ))

    # -- login ----------------------------------------------------------------------------------------------
    def login_allowed(self, client: str, now: float) -> bool:
        """Takes one login attempt from ``client``'s bucket (counted whatever the password)."""
        return self._limiter.allow(client, "login", now)

    def check_password(self, presented: object) -> bool:
        """Whether ``presented`` is the credential (constant time; any non-text is wrong)."""
        if not isinstance(presented, str) or len(presented) > MAX_CREDENTIAL_CHARS:
            return False
        return hmac.compare_digest(presented.encode("utf-8"), self.credential.secret.encode("utf-8"))

    def open_session(self, now: float) -> str:
        """A new session; returns the cookie value."""
        if len(self._sessions) >= MAX_SESSIONS:
            self._forget_expired(now)
        if len(self._sessions) >= MAX_SESSIONS:
            oldest = min(self._sessions, key=self._sessions.__getitem__)
            del self._sessions[oldest]
        session_id = secrets.token_urlsafe(16)
        issued = f"{now:.3f}"
        self._sessions[session_id] = now
        return f"{session_id}.{issued}.{self._sign(session_id + '.' + issued)}"

    def close_session(self, cookie: str | None) -> None:
        session_id = self.session_of(cookie, now=None)
        if session_id is not None:
            self._sessions.pop(session_id, None)

    # -- checks ---------------------------------------------------------------------------------------------
    def session_of(self, cookie: str | None, now: float | None) -> str | None:
        """The session id a cookie value proves, or None (unsigned, tampered, expired, logged out).

        ``now=None`` skips the expiry check (logging out an expired session is harmless).
        """
        if not cookie or len(cookie) > 200:
            return None
        parts = cookie.split(".")
        if len(parts) != 4:  # id . seconds . milliseconds . signature
            return None
        session_id, whole, fraction, signature = parts
        issued_text = f"{whole}.{fraction}"
        if not hmac.compare_digest(signature, self._sign(session_id + "." + issued_text)):
            return None
        issued = self._sessions.get(session_id)
        if issued is None:
            return None
        if now is not None and not 0 <= now - issued < SESSION_MAX_AGE_S:
            self._sessions.pop(session_id, None)
            return None
        return session_id

    def csrf_token(self, session_id: str) -> str:
        """The anti-CSRF token of a session (the page reads it from the login answer and the page itself)."""
        return self._sign("csrf:" + session_id)

    def csrf_ok(self, session_id: str, presented: str | None) -> bool:
        return isinstance(presented, str) and hmac.compare_digest(presented, self.csrf_token(session_id))

    def refuse(self, what: str) -> None:
        """Counts a request refused for missing or wrong credentials."""
        self.unauthorized[what] += 1

    # -- internals ------------------------------------------------------------------------------------------
    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest()

    def _forget_expired(self, now: float) -> None:
        for session_id in [s for s, at in self._sessions.items() if now - at >= SESSION_MAX_AGE_S]:
            del self._sessions[session_id]
