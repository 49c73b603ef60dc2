"""Resume secrets: what lets a returning page continue a participant's session.

A participant id often comes from the URL (a Prolific id), so knowing it must not be enough to take over
someone's session. At the first connection the server issues a random secret that the page keeps in the
browser's storage; the database keeps only its SHA-256 hash. A later connection for that participant resumes
only when it presents the secret. Pure: no I/O besides the operating system's randomness.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

SECRET_BYTES = 24
# A page keeps the secrets of the last few participant ids used in this browser (tests, shared lab machines).
MAX_PRESENTED_SECRETS = 8
MAX_SECRET_CHARS = 64


def issue_secret() -> tuple[str, str]:
    """A new secret and its hash: ``(secret for the page, hash for the database)``."""
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return secret, hash_secret(secret)


def hash_secret(secret: str) -> str:
    """The stored form of a secret (hex SHA-256)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(presented: str | None, stored_hash: str | None) -> bool:
    """Whether ``presented`` is the secret whose hash is ``stored_hash`` (constant-time comparison)."""
    if not presented or not stored_hash:
        return False
    return hmac.compare_digest(hash_secret(presented), stored_hash)


def presented_secrets(raw: Any) -> dict[str, str]:
    """The ``{participant_id: secret}`` map a page sent, cleaned: anything malformed is dropped, not fatal."""
    if not isinstance(raw, Mapping):
        return {}
    out: dict[str, str] = {}
    for key, value in list(raw.items())[:MAX_PRESENTED_SECRETS]:
        if isinstance(key, str) and len(key) <= 64 and isinstance(value, str) and 0 < len(value) <= MAX_SECRET_CHARS:
            out[key] = value
    return out
