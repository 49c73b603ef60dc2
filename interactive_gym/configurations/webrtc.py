"""WebRTC / TURN settings: what the server hands each p2p participant so that peers can always connect.

Researchers call ``RemoteConfig.webrtc(turn_username=..., turn_credential=..., force_relay=...)``; at server start-up
that call is resolved here into a frozen :class:`WebRTCSettings`, with the environment variables ``TURN_USERNAME``,
``TURN_CREDENTIAL``, ``TURN_SECRET``, ``TURN_URLS`` and ``STUN_URLS`` filling whatever the call left out. Explicit
arguments always win over the environment, field by field.

Two kinds of TURN credentials:

* static (long-term) credentials: the same username/credential pair goes to every participant;
* ephemeral credentials (TURN REST API, coturn ``use-auth-secret``): the server keeps a shared secret and mints
  ``username = "<expiry unix time>:<participant id>"``, ``credential = base64(HMAC-SHA1(secret, username))``.
  The TURN server recomputes the HMAC and refuses the pair once the expiry has passed. The secret never leaves
  the server, so a participant can only ever learn a credential that expires.

What a participant's page gets is one :class:`TurnGrant`, built here and nowhere else: the complete
``RTCConfiguration`` (``iceServers`` with credentials, ``iceTransportPolicy``) that the page hands to
``RTCPeerConnection`` as it is, plus the seed's ``turn_config`` ``{username, credential, force_relay, expires_at}``.
The default TURN/STUN URLs exist only in this module.

Everything here is pure: no clock is read (callers pass ``now``) and the environment is an explicit mapping.
Secrets are kept out of ``repr``/``str`` and out of every error message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Open Relay (metered.ca) is the public TURN service the original TURN wiring named; it needs credentials from
# https://www.metered.ca/tools/openrelay/. Deployments with their own coturn set turn_urls / TURN_URLS.
DEFAULT_TURN_URLS: tuple[str, ...] = (
    "turn:openrelay.metered.ca:80",
    "turn:openrelay.metered.ca:443",
    "turn:openrelay.metered.ca:443?transport=tcp",
)
DEFAULT_STUN_URLS: tuple[str, ...] = ("stun:openrelay.metered.ca:80",)
DEFAULT_CREDENTIAL_TTL_S = 3600.0
# Ephemeral credentials are re-minted this long before they expire (or at half their lifetime, if shorter), so a
# reconnection late in a long session still gets a TURN allocation.
MAX_REFRESH_MARGIN_S = 300.0

ENV_TURN_USERNAME = "TURN_USERNAME"
ENV_TURN_CREDENTIAL = "TURN_CREDENTIAL"  # noqa: S105 - the variable's name, not a secret
ENV_TURN_SECRET = "TURN_SECRET"  # noqa: S105
ENV_TURN_URLS = "TURN_URLS"
ENV_STUN_URLS = "STUN_URLS"

_TURN_SCHEMES = ("turn:", "turns:")
_STUN_SCHEMES = ("stun:", "stuns:")
_MAX_PARTICIPANT_ID_LEN = 128
_HIDDEN = "'***'"


class WebRTCConfigError(ValueError):
    """The WebRTC/TURN configuration is inconsistent; the message says what to set or remove."""


def mint_rest_credential(secret: str, participant_id: str, expires_at: int) -> tuple[str, str]:
    """Mints a TURN REST API (coturn ``use-auth-secret``) credential pair.

    Args:
        secret: the shared secret configured in the TURN server as ``static-auth-secret``.
        participant_id: who the credential is for; ends up after the colon in the username (coturn logs it).
        expires_at: unix time (seconds) after which the TURN server refuses the pair.

    Returns:
        ``(username, credential)`` where ``username = f"{expires_at}:{participant_id}"`` and ``credential`` is the
        base64 of HMAC-SHA1(secret, username).
    """
    username = f"{int(expires_at)}:{participant_id}"
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def _check_participant_id(participant_id: object) -> str:
    # coturn reads the expiry up to the first ':' (the digits before it), so ids may contain ':' themselves;
    # the bound keeps the STUN USERNAME attribute far below its 513-byte limit.
    if not isinstance(participant_id, str) or not participant_id:
        raise ValueError("participant_id must be a non-empty string")
    if len(participant_id) > _MAX_PARTICIPANT_ID_LEN:
        raise ValueError(f"participant_id must be at most {_MAX_PARTICIPANT_ID_LEN} characters")
    return participant_id


@dataclass(frozen=True)
class TurnGrant:
    """What one participant's page gets for one game: the seed's ``turn_config`` and the final RTCConfiguration.

    Attributes:
        turn_config: ``{"username", "credential", "force_relay", "expires_at"}``, or None without TURN.
        rtc_configuration: ``{"iceServers": [...], "iceTransportPolicy": "all" | "relay"}``, used by the page as is.
        expires_at: Unix time after which the TURN server refuses the credentials (None: they never expire).
    """

    turn_config: dict[str, Any] | None = field(repr=False)
    rtc_configuration: dict[str, Any] = field(repr=False)
    expires_at: int | None = None

    def __repr__(self) -> str:
        # The credential is in both payloads: neither may reach a log through repr.
        username = self.turn_config["username"] if self.turn_config else None
        return f"TurnGrant(username={username!r}, expires_at={self.expires_at!r})"

    def due(self, now: float, margin_s: float) -> bool:
        """True when the credentials expire within ``margin_s`` of ``now`` (or already have): mint new ones."""
        return self.expires_at is not None and now >= self.expires_at - margin_s


@dataclass(frozen=True)
class WebRTCSettings:
    """Resolved, validated WebRTC settings for one server. Build with :meth:`from_config`.

    Attributes:
        turn_urls: TURN server URLs (``turn:`` / ``turns:``) handed to browsers when TURN is configured.
        stun_urls: STUN server URLs (``stun:`` / ``stuns:``); may be empty (no STUN, e.g. loopback-only tests).
        force_relay: browsers use ``iceTransportPolicy: "relay"`` (every pair goes through TURN).
        turn_username: static TURN username, or None.
        turn_credential: static TURN credential, or None (hidden in repr).
        turn_secret: TURN REST API shared secret, or None (hidden in repr; never sent to browsers).
        credential_ttl_s: lifetime of minted ephemeral credentials, in seconds.
    """

    turn_urls: tuple[str, ...] = DEFAULT_TURN_URLS
    stun_urls: tuple[str, ...] = DEFAULT_STUN_URLS
    force_relay: bool = False
    turn_username: str | None = None
    turn_credential: str | None = field(default=None, repr=False)
    turn_secret: str | None = field(default=None, repr=False)
    credential_ttl_s: float = DEFAULT_CREDENTIAL_TTL_S

    def __repr__(self) -> str:
        # Written by hand so that secrets can never leak through logs, tracebacks or debuggers.
        credential = _HIDDEN if self.turn_credential is not None else "None"
        secret = _HIDDEN if self.turn_secret is not None else "None"
        return (
            f"WebRTCSettings(mode={self.mode!r}, turn_urls={list(self.turn_urls)!r}, "
            f"stun_urls={list(self.stun_urls)!r}, force_relay={self.force_relay!r}, "
            f"turn_username={self.turn_username!r}, turn_credential={credential}, turn_secret={secret}, "
            f"credential_ttl_s={self.credential_ttl_s!r})"
        )

    __str__ = __repr__

    @property
    def mode(self) -> str:
        """``"static"``, ``"ephemeral"`` or ``"none"`` (no TURN: direct connections only)."""
        if self.turn_secret is not None:
            return "ephemeral"
        if self.turn_username is not None:
            return "static"
        return "none"

    @property
    def has_turn(self) -> bool:
        """True when browsers get TURN servers (and so can be relayed)."""
        return self.mode != "none"

    @classmethod
    def from_config(
        cls,
        turn_username: str | None = None,
        turn_credential: str | None = None,
        force_relay: bool = False,
        *,
        turn_urls: Iterable[str] | str | None = None,
        stun_urls: Iterable[str] | str | None = None,
        turn_secret: str | None = None,
        credential_ttl_s: float = DEFAULT_CREDENTIAL_TTL_S,
        environ: Mapping[str, str] | None = None,
    ) -> WebRTCSettings:
        """Resolves ``RemoteConfig.webrtc(...)`` arguments plus environment fallbacks into validated settings.

        Args:
            turn_username: static TURN username; falls back to ``TURN_USERNAME``.
            turn_credential: static TURN credential; falls back to ``TURN_CREDENTIAL``.
            force_relay: relay every connection through TURN (requires TURN credentials).
            turn_urls: TURN URLs (list, or one comma-separated string); falls back to ``TURN_URLS``, then Open Relay.
            stun_urls: STUN URLs; falls back to ``STUN_URLS``, then a public STUN URL. ``[]`` means no STUN.
            turn_secret: TURN REST API secret for ephemeral credentials; falls back to ``TURN_SECRET``.
            credential_ttl_s: lifetime of ephemeral credentials in seconds (> 0).
            environ: the environment to read; ``os.environ`` when None. Empty variables count as unset.

        Returns:
            The resolved settings.

        Raises:
            WebRTCConfigError: half a static credential, both static credentials and a secret, an invalid URL,
                a non-positive TTL, ``force_relay`` without TURN credentials, or a wrong argument type.
        """
        env = os.environ if environ is None else environ

        def from_env(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value and value.strip() else None

        username = _optional_str("turn_username", turn_username) or from_env(ENV_TURN_USERNAME)
        credential = _optional_str("turn_credential", turn_credential) or from_env(ENV_TURN_CREDENTIAL)
        secret = _optional_str("turn_secret", turn_secret) or from_env(ENV_TURN_SECRET)

        if not isinstance(force_relay, bool):
            raise WebRTCConfigError(f"force_relay must be True or False, got {type(force_relay).__name__}")
        if (username is None) != (credential is None):
            missing, given = ("turn_credential", "turn_username") if credential is None else (
                "turn_username", "turn_credential")
            raise WebRTCConfigError(
                f"{given} is set but {missing} is not: set both (arguments of RemoteConfig.webrtc, or the env "
                f"vars {ENV_TURN_USERNAME} and {ENV_TURN_CREDENTIAL}), or neither."
            )
        if username is not None and secret is not None:
            raise WebRTCConfigError(
                "Both static TURN credentials (turn_username/turn_credential or TURN_USERNAME/TURN_CREDENTIAL) and "
                "a TURN REST secret (turn_secret or TURN_SECRET) are set: keep only one of the two."
            )
        ttl = _check_ttl(credential_ttl_s)

        turns_given = turn_urls is not None or from_env(ENV_TURN_URLS) is not None
        resolved_turn = _resolve_urls("turn_urls", ENV_TURN_URLS, turn_urls, from_env(ENV_TURN_URLS),
                                      DEFAULT_TURN_URLS, _TURN_SCHEMES, allow_empty=False)
        resolved_stun = _resolve_urls("stun_urls", ENV_STUN_URLS, stun_urls, from_env(ENV_STUN_URLS),
                                      DEFAULT_STUN_URLS, _STUN_SCHEMES, allow_empty=True)
        has_credentials = username is not None or secret is not None
        if turns_given and not has_credentials:
            raise WebRTCConfigError(
                "TURN URLs are set (turn_urls or TURN_URLS) but no TURN credentials: set turn_username and "
                "turn_credential (or TURN_USERNAME/TURN_CREDENTIAL), or turn_secret (TURN_SECRET)."
            )
        if force_relay and not has_credentials:
            raise WebRTCConfigError(
                "force_relay=True needs a TURN server: set turn_username and turn_credential (or TURN_USERNAME/"
                "TURN_CREDENTIAL), or turn_secret (TURN_SECRET) for ephemeral credentials."
            )
        return cls(
            turn_urls=resolved_turn,
            stun_urls=resolved_stun,
            force_relay=force_relay,
            turn_username=username,
            turn_credential=credential,
            turn_secret=secret,
            credential_ttl_s=ttl,
        )

    @property
    def refresh_margin_s(self) -> float:
        """How long before expiry ephemeral credentials are re-minted (half the lifetime, at most 5 minutes)."""
        return min(self.credential_ttl_s / 2, MAX_REFRESH_MARGIN_S)

    def grant_for(self, participant_id: str, now: float) -> TurnGrant:
        """Mints (ephemeral) or hands out (static) one participant's TURN credentials and builds their
        RTCConfiguration: STUN entry first, then one TURN entry with the credentials.

        Args:
            participant_id: the participant the credentials are for (ephemeral usernames carry it).
            now: current unix time in seconds.

        Returns:
            The grant. Never contains the REST secret.
        """
        participant = _check_participant_id(participant_id)
        ice_servers: list[dict[str, Any]] = []
        if self.stun_urls:
            ice_servers.append({"urls": list(self.stun_urls)})
        expires_at: int | None = None
        if self.turn_secret is not None:
            expires_at = int(math.floor(now + self.credential_ttl_s))
            username, credential = mint_rest_credential(self.turn_secret, participant, expires_at)
        elif self.turn_username is not None and self.turn_credential is not None:
            username, credential = self.turn_username, self.turn_credential
        else:
            return TurnGrant(None, {"iceServers": ice_servers, "iceTransportPolicy": "all"})
        ice_servers.append({"urls": list(self.turn_urls), "username": username, "credential": credential})
        turn_config = {"username": username, "credential": credential, "force_relay": self.force_relay,
                       "expires_at": expires_at}
        policy = "relay" if self.force_relay else "all"
        return TurnGrant(turn_config, {"iceServers": ice_servers, "iceTransportPolicy": policy}, expires_at)

    def turn_config_for(self, participant_id: str, now: float) -> dict[str, Any] | None:
        """The seed's ``turn_config`` of a fresh grant (see :meth:`grant_for`), or None without TURN."""
        return self.grant_for(participant_id, now).turn_config

    def ice_servers_for(self, participant_id: str, now: float) -> list[dict[str, Any]]:
        """The ``iceServers`` of a fresh grant (see :meth:`grant_for`)."""
        servers: list[dict[str, Any]] = self.grant_for(participant_id, now).rtc_configuration["iceServers"]
        return servers

    def describe(self) -> dict[str, Any]:
        """A log-safe summary (no credential, no secret) for start-up messages."""
        return {"mode": self.mode, "turn_urls": list(self.turn_urls), "stun_urls": list(self.stun_urls),
                "force_relay": self.force_relay, "credential_ttl_s": self.credential_ttl_s}


def _optional_str(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise WebRTCConfigError(f"{name} must be a string or None, got {type(value).__name__}")
    stripped = value.strip()
    if not stripped:
        raise WebRTCConfigError(f"{name} is an empty string: give a value or leave it as None")
    return stripped


def _check_ttl(ttl: object) -> float:
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl) or ttl <= 0:
        raise WebRTCConfigError(f"credential_ttl_s must be a positive number of seconds, got {ttl!r}")
    return float(ttl)


def _resolve_urls(
    name: str,
    env_name: str,
    given: Iterable[str] | str | None,
    from_env: str | None,
    default: tuple[str, ...],
    schemes: tuple[str, ...],
    *,
    allow_empty: bool,
) -> tuple[str, ...]:
    if given is not None:
        source = name
        if isinstance(given, str):
            urls = [u.strip() for u in given.split(",")]
        else:
            try:
                urls = list(given)
            except TypeError:
                raise WebRTCConfigError(f"{name} must be a list of URL strings, got {type(given).__name__}") from None
    elif from_env is not None:
        source = f"env {env_name}"
        # A trailing comma in an env var is a harmless slip; empty items are dropped.
        urls = [u.strip() for u in from_env.split(",") if u.strip()]
    else:
        return default
    if not urls and not allow_empty:
        raise WebRTCConfigError(f"{source} is empty: give at least one URL starting with {' or '.join(schemes)}")
    for url in urls:
        if not isinstance(url, str) or not url.strip():
            raise WebRTCConfigError(f"{source} contains an empty or non-string entry: {url!r}")
        if not url.startswith(schemes) or len(url) <= len(url.split(":", 1)[0]) + 1 or any(c.isspace() for c in url):
            raise WebRTCConfigError(
                f"{source} entry {url!r} is not a valid URL: it must start with {' or '.join(schemes)} "
                f"followed by a host, e.g. {schemes[0]}relay.example.org:3478"
            )
    return tuple(urls)
