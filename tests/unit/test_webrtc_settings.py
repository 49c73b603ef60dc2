"""WebRTCSettings: TURN/STUN resolution from arguments and env vars, validation, ephemeral credential minting, and
the one RTCConfiguration each participant gets (checked against the table the page's tests also use)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interactive_gym.configurations.webrtc import (
    DEFAULT_STUN_URLS,
    DEFAULT_TURN_URLS,
    WebRTCConfigError,
    WebRTCSettings,
    mint_rest_credential,
)

NOW = 1_700_000_000.0
CASES = json.loads((Path(__file__).parents[1] / "fixtures" / "rtc_configuration_cases.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_settings_build_the_tables_rtc_configuration_and_turn_config(case: dict[str, Any]) -> None:
    settings = WebRTCSettings.from_config(**case["settings"], environ={})
    grant = settings.grant_for(case["participant"], case["now"])
    assert grant.rtc_configuration == case["rtc_configuration"]
    assert grant.turn_config == case["turn_config"]
    assert grant.expires_at == (case["turn_config"] or {}).get("expires_at")
    assert settings.has_turn is case["has_turn"] and settings.force_relay is case["force_relay"]
    # The older accessors are views of the same grant, never a second shape.
    assert settings.turn_config_for(case["participant"], case["now"]) == case["turn_config"]
    assert settings.ice_servers_for(case["participant"], case["now"]) == case["rtc_configuration"]["iceServers"]
    secret = case["settings"].get("turn_secret")
    if secret:
        assert secret not in json.dumps(grant.rtc_configuration) + json.dumps(grant.turn_config)
    credential = (case["turn_config"] or {}).get("credential")
    if credential:
        assert credential not in repr(grant)  # a grant in a log line shows the username only


def test_grants_are_due_for_renewal_within_the_margin_and_static_ones_never() -> None:
    ephemeral = WebRTCSettings.from_config(turn_secret="k", credential_ttl_s=3600, environ={})
    assert ephemeral.refresh_margin_s == 300  # five minutes at most
    grant = ephemeral.grant_for("alice", NOW)
    assert grant.expires_at == NOW + 3600
    assert not grant.due(NOW + 3299, ephemeral.refresh_margin_s)
    assert grant.due(NOW + 3300, ephemeral.refresh_margin_s) and grant.due(NOW + 9999, ephemeral.refresh_margin_s)
    short = WebRTCSettings.from_config(turn_secret="k", credential_ttl_s=60, environ={})
    assert short.refresh_margin_s == 30  # half of a short lifetime
    static = WebRTCSettings.from_config("u", "c", environ={}).grant_for("alice", NOW)
    assert static.expires_at is None and not static.due(NOW + 10**9, 300)


def test_nothing_configured_means_no_turn_and_public_defaults() -> None:
    s = WebRTCSettings.from_config(environ={})
    assert s.mode == "none" and not s.has_turn
    assert s.turn_config_for("p1", NOW) is None
    assert s.ice_servers_for("p1", NOW) == [{"urls": list(DEFAULT_STUN_URLS)}]
    assert all("openrelay.metered.ca" in u for u in DEFAULT_TURN_URLS)


def test_static_credentials_from_arguments() -> None:
    s = WebRTCSettings.from_config("alice", "pw", True, turn_urls=["turn:127.0.0.1:3478"], stun_urls=[], environ={})
    assert s.mode == "static"
    assert s.turn_config_for("p1", NOW) == {
        "username": "alice", "credential": "pw", "force_relay": True, "expires_at": None,
    }
    assert s.ice_servers_for("p1", NOW) == [{"urls": ["turn:127.0.0.1:3478"], "username": "alice", "credential": "pw"}]


def test_env_vars_are_the_fallback() -> None:
    env = {"TURN_USERNAME": "envuser", "TURN_CREDENTIAL": "envpw", "TURN_URLS": "turn:a.test:3478, turns:a.test:5349,",
           "STUN_URLS": "stun:s.test:3478"}
    s = WebRTCSettings.from_config(environ=env)
    cfg = s.turn_config_for("p", NOW)
    assert cfg is not None
    assert (cfg["username"], cfg["credential"]) == ("envuser", "envpw")
    assert s.turn_urls == ("turn:a.test:3478", "turns:a.test:5349")
    assert s.stun_urls == ("stun:s.test:3478",)
    # The seed's default: TURN URLs are Open Relay when only the credentials come from the environment.
    only_creds = WebRTCSettings.from_config(environ={"TURN_USERNAME": "u", "TURN_CREDENTIAL": "c"})
    assert only_creds.turn_urls == DEFAULT_TURN_URLS


def test_explicit_arguments_win_over_env_vars() -> None:
    env = {"TURN_USERNAME": "envuser", "TURN_CREDENTIAL": "envpw", "TURN_URLS": "turn:env.test",
           "STUN_URLS": "stun:env.test"}
    s = WebRTCSettings.from_config("arg", "argpw", turn_urls=["turn:arg.test"], stun_urls=[], environ=env)
    assert (s.turn_username, s.turn_credential) == ("arg", "argpw")
    assert s.turn_urls == ("turn:arg.test",)
    assert s.stun_urls == ()
    assert s.ice_servers_for("p", NOW)[0]["urls"] == ["turn:arg.test"]


def test_empty_env_vars_count_as_unset() -> None:
    s = WebRTCSettings.from_config(environ={"TURN_USERNAME": "", "TURN_CREDENTIAL": "  ", "TURN_URLS": ""})
    assert s.mode == "none" and s.turn_urls == DEFAULT_TURN_URLS


@pytest.mark.parametrize(
    ("kwargs", "env", "needle"),
    [
        ({"turn_username": "u"}, {}, "turn_username is set but turn_credential is not"),
        ({"turn_credential": "c"}, {}, "turn_credential is set but turn_username is not"),
        ({}, {"TURN_USERNAME": "u"}, "TURN_CREDENTIAL"),
        ({"turn_username": "u", "turn_credential": "c", "turn_secret": "s"}, {}, "keep only one"),
        ({"turn_secret": "s"}, {"TURN_USERNAME": "u", "TURN_CREDENTIAL": "c"}, "keep only one"),
        ({"force_relay": True}, {}, "force_relay=True needs a TURN server"),
        ({"turn_secret": "s", "credential_ttl_s": 0}, {}, "credential_ttl_s must be a positive"),
        ({"turn_secret": "s", "credential_ttl_s": -5}, {}, "credential_ttl_s must be a positive"),
        ({"turn_secret": "s", "credential_ttl_s": float("nan")}, {}, "credential_ttl_s"),
        ({"turn_secret": "s", "credential_ttl_s": True}, {}, "credential_ttl_s"),
        ({"turn_secret": "s", "turn_urls": ["stun:x.test"]}, {}, "must start with turn: or turns:"),
        ({"turn_secret": "s", "turn_urls": ["http://x.test"]}, {}, "not a valid URL"),
        ({"turn_secret": "s", "turn_urls": ["turn:"]}, {}, "not a valid URL"),
        ({"turn_secret": "s", "turn_urls": ["turn:a b"]}, {}, "not a valid URL"),
        ({"turn_secret": "s", "turn_urls": [""]}, {}, "empty"),
        ({"turn_secret": "s", "turn_urls": []}, {}, "turn_urls is empty"),
        ({"turn_secret": "s", "turn_urls": [3478]}, {}, "non-string"),
        ({"turn_secret": "s", "turn_urls": 3478}, {}, "must be a list"),
        ({"turn_secret": "s"}, {"TURN_URLS": " , "}, "env TURN_URLS is empty"),
        ({"stun_urls": ["turn:x.test"]}, {}, "must start with stun: or stuns:"),
        ({}, {"STUN_URLS": "stun.example.org"}, "env STUN_URLS entry"),
        ({"turn_urls": ["turn:x.test"]}, {}, "no TURN credentials"),
        ({}, {"TURN_URLS": "turn:x.test"}, "no TURN credentials"),
        ({"turn_username": 5, "turn_credential": "c"}, {}, "turn_username must be a string"),
        ({"turn_username": "", "turn_credential": "c"}, {}, "turn_username is an empty string"),
        ({"force_relay": "yes"}, {}, "force_relay must be True or False"),
    ],
)
def test_configuration_mistakes_fail_with_a_message_saying_what_to_set(kwargs, env, needle) -> None:
    with pytest.raises(WebRTCConfigError) as err:
        WebRTCSettings.from_config(**kwargs, environ=env)
    assert needle in str(err.value)
    assert isinstance(err.value, ValueError)


def test_secrets_never_appear_in_repr_str_describe_or_errors() -> None:
    s = WebRTCSettings.from_config("user-x", "hunter2-credential", environ={})
    e = WebRTCSettings.from_config(turn_secret="sekrit-shared", environ={})
    for text in (repr(s), str(s), str(s.describe()), repr(e), str(e), str(e.describe())):
        assert "hunter2-credential" not in text and "sekrit-shared" not in text
    assert "turn_credential='***'" in repr(s) and "turn_secret='***'" in repr(e)
    assert "user-x" in repr(s)  # the username is not a secret and helps debugging
    with pytest.raises(WebRTCConfigError) as err:
        WebRTCSettings.from_config("u", "hunter2-credential", turn_secret="sekrit-shared", environ={})
    assert "hunter2" not in str(err.value) and "sekrit" not in str(err.value)


def test_rest_credential_matches_an_independent_openssl_vector() -> None:
    # printf '%s' '1700003600:alice' | openssl dgst -sha1 -hmac 'north-wind' -binary | base64
    assert mint_rest_credential("north-wind", "alice", 1_700_003_600) == (
        "1700003600:alice", "iRtTIZ3N38dm9S+dP+UkHfnN9Qo=")


def test_ephemeral_credentials_expire_after_ttl_and_never_carry_the_secret() -> None:
    s = WebRTCSettings.from_config(turn_secret="north-wind", credential_ttl_s=600, force_relay=True,
                                   turn_urls="turn:127.0.0.1:3478?transport=tcp", environ={})
    assert s.mode == "ephemeral"
    cfg = s.turn_config_for("alice", 1_700_003_000.4)
    assert cfg == {"username": "1700003600:alice", "credential": "iRtTIZ3N38dm9S+dP+UkHfnN9Qo=",
                   "force_relay": True, "expires_at": 1_700_003_600}
    assert "north-wind" not in str(cfg) and "north-wind" not in str(s.ice_servers_for("alice", NOW))
    # Different participants and different times get different credentials.
    assert s.turn_config_for("bob", 1_700_003_000)["credential"] != cfg["credential"]
    assert s.turn_config_for("alice", 1_700_003_100)["username"] == "1700003700:alice"


def test_env_secret_gives_ephemeral_mode() -> None:
    s = WebRTCSettings.from_config(environ={"TURN_SECRET": "from-env"})
    cfg = s.turn_config_for("p", NOW)
    assert s.mode == "ephemeral" and cfg is not None
    expected = base64.b64encode(hmac.new(b"from-env", cfg["username"].encode(), hashlib.sha1).digest()).decode()
    assert cfg["credential"] == expected
    assert cfg["expires_at"] == int(NOW) + 3600


@pytest.mark.parametrize("bad", ["", "x" * 129, None, 7])
def test_bad_participant_ids_are_rejected(bad) -> None:
    s = WebRTCSettings.from_config(turn_secret="s", environ={})
    with pytest.raises(ValueError, match="participant_id"):
        s.turn_config_for(bad, NOW)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=64),
       st.integers(min_value=0, max_value=2**40), st.integers(min_value=1, max_value=10**6))
def test_minted_username_always_encodes_expiry_first(participant, now, ttl) -> None:
    s = WebRTCSettings.from_config(turn_secret="k", credential_ttl_s=ttl, environ={})
    cfg = s.turn_config_for(participant, now)
    expiry, _, who = cfg["username"].partition(":")
    # coturn takes the digits before the first ':' as the expiry, so ids containing ':' stay unambiguous.
    assert int(expiry) == now + ttl == cfg["expires_at"] and who == participant
    assert len(base64.b64decode(cfg["credential"])) == 20  # an SHA-1 HMAC


def test_settings_are_frozen() -> None:
    s = WebRTCSettings.from_config(environ={})
    with pytest.raises(AttributeError):
        s.force_relay = True  # type: ignore[misc]
