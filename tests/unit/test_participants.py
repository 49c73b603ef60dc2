"""Tests for participant identity (URL parameters) and the registry's connection decisions."""

from __future__ import annotations

import re

import pytest

from interactive_gym.scenes.scene import EndScene, Scene
from interactive_gym.server.flow.participants import (
    ID_PARAMS,
    MAX_PARAM_KEY,
    MAX_PARAM_VALUE,
    MAX_PARAMS,
    ConnectKind,
    IdentityError,
    Participant,
    ParticipantRegistry,
    Status,
    clean_url_params,
    new_participant_id,
    participant_id_from,
)
from interactive_gym.server.flow.sessions import hash_secret, issue_secret, presented_secrets, secret_matches

SEQUENCE = [Scene("intro"), Scene("game"), EndScene()]


def registry() -> tuple[ParticipantRegistry, list[str]]:
    asked: list[str] = []

    def sequence_for(participant_id: str) -> list[Scene]:
        asked.append(participant_id)
        return list(SEQUENCE)

    return ParticipantRegistry(sequence_for), asked


# -- clean_url_params -----------------------------------------------------------------------------------------
def test_clean_url_params_keeps_string_params() -> None:
    raw = {"subject_id": "s1", "study": "", "STUDY_ID": "x" * MAX_PARAM_VALUE, "k" * MAX_PARAM_KEY: "v"}
    assert clean_url_params(raw) == raw
    assert clean_url_params({}) == {}


def test_clean_url_params_limits() -> None:
    assert len(clean_url_params({f"p{i}": "v" for i in range(MAX_PARAMS)})) == MAX_PARAMS
    with pytest.raises(IdentityError, match=f"^too many URL parameters \\(at most {MAX_PARAMS}\\)$"):
        clean_url_params({f"p{i}": "v" for i in range(MAX_PARAMS + 1)})


@pytest.mark.parametrize("key", ["", "k" * (MAX_PARAM_KEY + 1), 3, None])
def test_clean_url_params_bad_names(key: object) -> None:
    with pytest.raises(IdentityError, match="^URL parameter names must be 1-64 characters$"):
        clean_url_params({key: "v"})


@pytest.mark.parametrize("value", ["x" * (MAX_PARAM_VALUE + 1), 3, None, ["a"], {"a": "b"}, True])
def test_clean_url_params_bad_values(value: object) -> None:
    with pytest.raises(IdentityError, match=f"^URL parameter 'name' must be text of at most {MAX_PARAM_VALUE} "):
        clean_url_params({"name": value})


@pytest.mark.parametrize("raw", [["a"], "subject_id=x", None, 5])
def test_clean_url_params_not_an_object(raw: object) -> None:
    with pytest.raises(IdentityError, match="^url_params must be an object$"):
        clean_url_params(raw)  # type: ignore[arg-type]


# -- participant_id_from ---------------------------------------------------------------------------------------
def test_id_params_preference_order() -> None:
    assert ID_PARAMS == ("PROLIFIC_PID", "subject_id", "participant_id", "workerId")
    params = {"workerId": "w", "participant_id": "p", "subject_id": "s", "PROLIFIC_PID": "pp"}
    assert participant_id_from(params, "gen") == ("pp", "PROLIFIC_PID")
    del params["PROLIFIC_PID"]
    assert participant_id_from(params, "gen") == ("s", "subject_id")
    del params["subject_id"]
    assert participant_id_from(params, "gen") == ("p", "participant_id")
    del params["participant_id"]
    assert participant_id_from(params, "gen") == ("w", "workerId")


def test_empty_id_param_is_skipped() -> None:
    assert participant_id_from({"PROLIFIC_PID": "", "subject_id": "s-1"}, None) == ("s-1", "subject_id")


def test_generated_id_is_used_without_params() -> None:
    assert participant_id_from({"other": "x"}, "anon-abc") == ("anon-abc", "generated")


@pytest.mark.parametrize("bad", ["a b", "x" * 65, "../etc", "a;b", "é", "id\n"])
def test_bad_id_param_is_refused_not_skipped(bad: str) -> None:
    with pytest.raises(IdentityError, match="^subject_id must be 1-64 letters, digits, '_' or '-'$"):
        participant_id_from({"subject_id": bad}, "anon-ok")


def test_bad_prolific_id_names_the_parameter() -> None:
    with pytest.raises(IdentityError, match="^PROLIFIC_PID must be"):
        participant_id_from({"PROLIFIC_PID": "no way", "subject_id": "fine"}, None)


@pytest.mark.parametrize("generated", [None, "", "bad id", "x" * 65, "gen\n"])
def test_no_usable_id(generated: str | None) -> None:
    with pytest.raises(IdentityError, match="^no participant id: open the link with \\?subject_id="):
        participant_id_from({}, generated)


def test_new_participant_id_is_valid_and_random() -> None:
    ids = {new_participant_id() for _ in range(50)}
    assert len(ids) == 50
    for pid in ids:
        assert re.fullmatch(r"anon-[0-9a-f]{16}", pid)
        assert participant_id_from({}, pid) == (pid, "generated")


# -- Participant -----------------------------------------------------------------------------------------------
def test_participant_scene_and_finished() -> None:
    p = Participant("p", {}, list(SEQUENCE), "tab")
    assert p.scene.scene_id == "intro"
    p.index = 2
    assert p.scene.scene_id == "end"
    assert not p.finished
    for status in (Status.COMPLETED, Status.TIMED_OUT, Status.ERRORED, Status.EXCLUDED):
        p.status = status
        assert p.finished
    p.status = Status.DROPPED  # a dropped participant may come back
    assert not p.finished


def test_status_and_kind_values_are_strings() -> None:
    assert [s.value for s in Status] == ["active", "completed", "timed_out", "errored", "dropped", "excluded"]
    assert ConnectKind.TAKEOVER == "takeover"


# -- registry --------------------------------------------------------------------------------------------------
def first_connect(reg: ParticipantRegistry, pid: str = "p1", tab: str = "tab-a", sid: str = "sid-1",
                  now: float = 0) -> tuple[Participant, str]:
    outcome = reg.connect(pid, tab, sid, {}, now)
    assert outcome.kind is ConnectKind.NEW and outcome.participant is not None and outcome.new_secret
    return outcome.participant, outcome.new_secret


def test_new_participant() -> None:
    reg, asked = registry()
    outcome = reg.connect("p1", "tab-a", "sid-1", {"subject_id": "p1"}, now=12.5)
    assert outcome.kind is ConnectKind.NEW
    p = outcome.participant
    assert p is not None
    assert (p.participant_id, p.tab_id, p.sid, p.index, p.status) == ("p1", "tab-a", "sid-1", 0, Status.ACTIVE)
    assert p.url_params == {"subject_id": "p1"}
    assert p.scene_started_at == 12.5
    assert [s.scene_id for s in p.sequence] == ["intro", "game", "end"]
    assert asked == ["p1"]
    assert reg.get("p1") is p and reg.by_sid("sid-1") is p
    assert len(reg) == 1
    assert outcome.old_sid is None
    # The page gets a secret; the registry keeps only its hash.
    assert outcome.new_secret and p.resume_secret_hash == hash_secret(outcome.new_secret)
    assert outcome.new_secret not in repr(p)


def test_resume_after_disconnect_keeps_progress() -> None:
    reg, asked = registry()
    p, secret = first_connect(reg)
    p.index = 1
    assert reg.disconnect("sid-1", now=3) is p
    assert p.sid is None and p.gone_since == 3
    assert reg.by_sid("sid-1") is None
    outcome = reg.connect("p1", "tab-b", "sid-2", {}, 5, secret)
    assert outcome.kind is ConnectKind.RESUMED
    assert outcome.participant is p and outcome.new_secret is None
    assert (p.sid, p.tab_id, p.index, p.gone_since) == ("sid-2", "tab-b", 1, None)
    assert reg.by_sid("sid-2") is p
    assert asked == ["p1"]  # the sequence is not recomputed
    assert len(reg) == 1


@pytest.mark.parametrize("presented", [None, "", "wrong", "x" * 64])
def test_the_id_alone_never_resumes(presented: str | None) -> None:
    reg, _ = registry()
    p, _ = first_connect(reg)
    reg.disconnect("sid-1", now=1)
    outcome = reg.connect("p1", "tab-b", "sid-2", {}, 2, presented)
    assert outcome.kind is ConnectKind.REFUSED_NOT_YOURS
    assert p.sid is None and reg.by_sid("sid-2") is None and p.tab_id == "tab-a"


def test_the_id_alone_cannot_take_over_a_live_session() -> None:
    reg, _ = registry()
    p, _ = first_connect(reg)
    assert reg.connect("p1", "tab-a", "sid-2", {}, 1, "guess").kind is ConnectKind.REFUSED_NOT_YOURS
    assert p.sid == "sid-1"


def test_reload_takeover_with_the_same_tab() -> None:
    reg, _ = registry()
    p, secret = first_connect(reg)
    outcome = reg.connect("p1", "tab-a", "sid-2", {}, 1, secret)
    assert outcome.kind is ConnectKind.TAKEOVER
    assert outcome.participant is p
    assert outcome.old_sid == "sid-1"
    assert p.sid == "sid-2"
    assert reg.by_sid("sid-1") is None
    assert reg.by_sid("sid-2") is p


def test_disconnect_of_the_old_socket_does_not_clear_the_new_one() -> None:
    reg, _ = registry()
    p, secret = first_connect(reg)
    reg.connect("p1", "tab-a", "sid-2", {}, 1, secret)
    assert reg.disconnect("sid-1", now=2) is None
    assert p.sid == "sid-2"
    assert reg.by_sid("sid-2") is p
    assert reg.disconnect("sid-2", now=3) is p
    assert p.sid is None


def test_second_tab_is_refused() -> None:
    reg, _ = registry()
    p, secret = first_connect(reg)
    outcome = reg.connect("p1", "tab-b", "sid-2", {}, 1, secret)
    assert outcome.kind is ConnectKind.REFUSED_OTHER_TAB
    assert outcome.participant is p
    assert p.sid == "sid-1" and p.tab_id == "tab-a"
    assert reg.by_sid("sid-2") is None
    assert reg.by_sid("sid-1") is p


def test_finished_participant_is_refused() -> None:
    reg, _ = registry()
    p, secret = first_connect(reg)
    reg.disconnect("sid-1", now=1)
    for status in (Status.COMPLETED, Status.TIMED_OUT, Status.ERRORED, Status.EXCLUDED):
        p.status = status
        outcome = reg.connect("p1", "tab-a", "sid-2", {}, 1, secret)
        assert outcome.kind is ConnectKind.REFUSED_FINISHED
        assert outcome.participant is p
        assert reg.by_sid("sid-2") is None
        assert p.sid is None


def test_a_dropped_participant_with_the_secret_resumes() -> None:
    reg, _ = registry()
    p, secret = first_connect(reg)
    reg.disconnect("sid-1", now=1)
    p.status = Status.DROPPED
    assert reg.connect("p1", "tab-a", "sid-2", {}, 400, secret).kind is ConnectKind.RESUMED


def test_finished_participant_is_refused_even_with_a_live_socket() -> None:
    reg, _ = registry()
    p, secret = first_connect(reg)
    p.status = Status.COMPLETED
    assert reg.connect("p1", "tab-a", "sid-2", {}, 1, secret).kind is ConnectKind.REFUSED_FINISHED
    assert p.sid == "sid-1"


def test_same_socket_connecting_again_resumes() -> None:
    reg, _ = registry()
    p, secret = first_connect(reg)
    outcome = reg.connect("p1", "tab-a", "sid-1", {}, 1, secret)
    assert outcome.kind is ConnectKind.RESUMED
    assert p.sid == "sid-1" and reg.by_sid("sid-1") is p


def test_unknown_socket_disconnect() -> None:
    reg, _ = registry()
    assert reg.disconnect("nobody", now=0) is None
    first_connect(reg, sid="s")
    assert reg.disconnect("s", now=1) is not None
    assert reg.disconnect("s", now=2) is None  # twice is harmless


def test_participants_are_independent() -> None:
    reg, asked = registry()
    a, _ = first_connect(reg, "a", "t1", "s1")
    b, _ = first_connect(reg, "b", "t1", "s2")
    assert a is not b
    assert reg.by_sid("s1") is a and reg.by_sid("s2") is b
    reg.disconnect("s1", now=1)
    assert b.sid == "s2"
    assert asked == ["a", "b"] and len(reg) == 2


def test_restore_from_database() -> None:
    reg, _ = registry()
    secret, secret_hash = issue_secret()
    p = reg.restore("p9", {"subject_id": "p9"}, "game", Status.ACTIVE, secret_hash, now=50)
    assert (p.index, p.status, p.sid, p.tab_id, p.gone_since) == (1, Status.ACTIVE, None, "", 50)
    assert reg.get("p9") is p
    assert reg.connect("p9", "tab-x", "sid-8", {}, 3, "not it").kind is ConnectKind.REFUSED_NOT_YOURS
    outcome = reg.connect("p9", "tab-x", "sid-9", {}, 3, secret)
    assert outcome.kind is ConnectKind.RESUMED
    assert p.index == 1 and p.tab_id == "tab-x"


def test_a_participant_stored_without_a_secret_gets_one_on_return() -> None:
    reg, _ = registry()
    p = reg.restore("old", {}, "game", Status.ACTIVE, None, now=0)
    outcome = reg.connect("old", "t", "s", {}, 1)
    assert outcome.kind is ConnectKind.RESUMED and outcome.new_secret
    assert p.resume_secret_hash == hash_secret(outcome.new_secret)
    reg.disconnect("s", now=2)
    assert reg.connect("old", "t", "s2", {}, 3).kind is ConnectKind.REFUSED_NOT_YOURS


def test_restore_of_an_unknown_scene_starts_at_the_beginning() -> None:
    reg, _ = registry()
    assert reg.restore("p", {}, "removed_scene", Status.ACTIVE, None, now=0).index == 0
    assert reg.restore("q", {}, None, Status.ACTIVE, None, now=0).index == 0


def test_restored_finished_participant_is_refused() -> None:
    reg, _ = registry()
    secret, secret_hash = issue_secret()
    reg.restore("done", {}, "end", Status.COMPLETED, secret_hash, now=0)
    assert reg.connect("done", "t", "s", {}, 0, secret).kind is ConnectKind.REFUSED_FINISHED


# -- sessions ----------------------------------------------------------------------------------------------------
def test_secrets_are_random_and_only_their_hash_matches() -> None:
    pairs = [issue_secret() for _ in range(20)]
    assert len({secret for secret, _ in pairs}) == 20
    secret, stored = pairs[0]
    assert secret_matches(secret, stored)
    assert not secret_matches(pairs[1][0], stored)
    assert not secret_matches(stored, stored)  # the hash itself is no key
    assert not secret_matches(None, stored) and not secret_matches(secret, None)


def test_presented_secrets_are_cleaned_and_bounded() -> None:
    assert presented_secrets(None) == {} and presented_secrets(["a"]) == {}
    raw = {"ok": "s1", "bad": 5, "long": "x" * 65, 7: "s", "empty": ""}
    assert presented_secrets(raw) == {"ok": "s1"}
    many = {f"p{i}": f"s{i}" for i in range(50)}
    assert len(presented_secrets(many)) == 8
