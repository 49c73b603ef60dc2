"""Tests for interactive_gym.controls: key names, the tick rule, chord/most-recent rules, validation, config round trip.

The cases every mode must agree on (JS and Python) are in tests/fixtures/input_cases.json, run by
tests/unit/test_input_cases.py and tests/js/input_cases.test.mjs; this file covers the rest of the module.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interactive_gym.controls import (
    KEY_ALIASES,
    MAX_KEY_NAME,
    NAMED_KEYS,
    Binding,
    ControlsError,
    KeyMapping,
    TickKeys,
    check_key_name,
    clean_held_keys,
    is_key_name,
    normalise_key,
)

UP, DOWN, LEFT, RIGHT, UP_LEFT, FIRE, UP_LEFT_FIRE, NOOP = 1, 2, 3, 4, 5, 6, 7, 0


def arrows() -> KeyMapping:
    return KeyMapping(
        {
            "ArrowUp": UP,
            "ArrowDown": DOWN,
            "ArrowLeft": LEFT,
            "ArrowRight": RIGHT,
            ("ArrowUp", "ArrowLeft"): UP_LEFT,
            " ": FIRE,
            ("ArrowUp", "ArrowLeft", "Space"): UP_LEFT_FIRE,
        },
        default_action=NOOP,
    )


# -- normalise_key -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" ", "Space"),
        ("Spacebar", "Space"),
        ("Esc", "Escape"),
        ("Left", "ArrowLeft"),
        ("Right", "ArrowRight"),
        ("Up", "ArrowUp"),
        ("Down", "ArrowDown"),
        ("A", "a"),
        ("z", "z"),
        ("1", "1"),
        ("ArrowLeft", "ArrowLeft"),
        ("Enter", "Enter"),
        ("Shift", "Shift"),
        ("x" * MAX_KEY_NAME, "x" * MAX_KEY_NAME),
    ],
)
def test_normalise_key_resolves_aliases_and_lowercases_single_letters(raw: str, expected: str) -> None:
    assert normalise_key(raw) == expected


@pytest.mark.parametrize("bad", ["", "x" * (MAX_KEY_NAME + 1), None, 3, b"a", ["a"]])
def test_normalise_key_refuses_bad_names(bad: object) -> None:
    with pytest.raises(ControlsError, match=f"non-empty strings of at most {MAX_KEY_NAME} characters"):
        normalise_key(bad)  # type: ignore[arg-type]


def test_controls_error_is_a_value_error() -> None:
    assert issubclass(ControlsError, ValueError)


# -- construction ---------------------------------------------------------------------------------------------
def test_empty_mapping_is_refused() -> None:
    with pytest.raises(ControlsError, match="the key mapping is empty"):
        KeyMapping({}, 0)


def test_empty_chord_is_refused() -> None:
    with pytest.raises(ControlsError, match="an empty tuple of keys"):
        KeyMapping({(): 1}, 0)


@pytest.mark.parametrize(
    "bindings",
    [
        {"a": 1, "A": 2},  # same key after lower-casing
        {"Left": 1, "ArrowLeft": 2},  # alias
        {("a", "b"): 1, ("b", "a"): 2},  # chord order does not matter
        {("a", "b"): 1, ("B", "a"): 2},
        {" ": 1, "Space": 2},
    ],
)
def test_same_keys_bound_twice_is_refused(bindings: dict) -> None:
    with pytest.raises(ControlsError, match="bound twice"):
        KeyMapping(bindings, 0)


def test_bad_key_name_in_mapping_is_refused() -> None:
    with pytest.raises(ControlsError, match="non-empty strings"):
        KeyMapping({"": 1}, 0)
    with pytest.raises(ControlsError, match="non-empty strings"):
        KeyMapping({("a", "x" * 40): 1}, 0)


def test_a_key_name_browsers_never_send_fails_with_a_hint() -> None:
    with pytest.raises(ControlsError) as info:
        KeyMapping({"ArrowLeft": 1, ("ArrowUp", "ArrowLft"): 2}, 0)
    assert str(info.value) == "key 'ArrowLft' is not a key name browsers send; did you mean 'ArrowLeft'?"
    with pytest.raises(ControlsError) as info:
        KeyMapping({"space": 1}, 0)
    assert str(info.value) == "key 'space' is not a key name browsers send; did you mean 'Space'?"


def test_the_hint_is_a_name_that_is_accepted() -> None:
    for wrong in ["space", "arrowup", "Ctrl", "Return", "KeyQ", "Digit7", "PAGEUP", "f5", "Tabb", "Escap"]:
        with pytest.raises(ControlsError, match="did you mean '(.+)'") as info:
            check_key_name(wrong)
        hint = str(info.value).rsplit("'", 2)[-2]
        assert check_key_name(hint) == hint, wrong


# -- key names -------------------------------------------------------------------------------------------------
def test_every_named_key_and_alias_is_accepted_and_canonical() -> None:
    for name in NAMED_KEYS:
        assert check_key_name(name) == name
    for alias, real in KEY_ALIASES.items():
        assert check_key_name(alias) == real
        assert real in NAMED_KEYS


def test_character_keys() -> None:
    for char in "abcxyz0123456789,./;'[]-=`\\!@#$%^&*()_+{}|:\"<>?~":
        assert is_key_name(normalise_key(char)), char
    for char in ["\t", "\n", "\u00a0", "\u2003", "\x00", "\x7f"]:
        assert not is_key_name(char), repr(char)


def test_multi_character_names_outside_the_table_are_refused() -> None:
    for name in ["F13", "Spacebar2", "arrowLeft", "LEFT", "KeyA", "Numpad1", "ab"]:
        assert not is_key_name(normalise_key(name)), name
        with pytest.raises(ControlsError, match="is not a key name browsers send"):
            check_key_name(name)


def test_bindings_are_normalised() -> None:
    mapping = KeyMapping({"A": 1, ("Left", " "): 2}, 0)
    assert mapping.bindings == (Binding(frozenset({"a"}), 1), Binding(frozenset({"ArrowLeft", "Space"}), 2))
    assert mapping.keys == ["ArrowLeft", "Space", "a"]


def test_keys_are_sorted_and_distinct() -> None:
    assert arrows().keys == sorted({"ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Space"})


def test_actions_lists_every_bound_action_and_the_default_last() -> None:
    assert arrows().actions() == [UP, DOWN, LEFT, RIGHT, UP_LEFT, FIRE, UP_LEFT_FIRE, NOOP]


def test_a_chord_of_one_repeated_key_is_a_single_key() -> None:
    mapping = KeyMapping({("a", "a"): 1}, 0)
    assert mapping.bindings == (Binding(frozenset({"a"}), 1),)
    assert mapping.action_for(["a"]) == 1


# -- action_for -------------------------------------------------------------------------------------------------
def test_no_keys_gives_the_default_action() -> None:
    assert arrows().action_for([]) == NOOP


def test_only_unknown_keys_give_the_default_action() -> None:
    assert arrows().action_for(["q", "Tab"]) == NOOP


def test_single_key() -> None:
    mapping = arrows()
    assert mapping.action_for(["ArrowUp"]) == UP
    assert mapping.action_for(["Space"]) == FIRE


def test_most_recent_single_key_wins() -> None:
    mapping = arrows()
    assert mapping.action_for(["ArrowLeft", "ArrowRight"]) == RIGHT
    assert mapping.action_for(["ArrowRight", "ArrowLeft"]) == LEFT
    assert mapping.action_for(["ArrowDown", "ArrowRight", "ArrowUp"]) == UP


def test_unknown_keys_are_ignored_by_most_recent_rule() -> None:
    assert arrows().action_for(["ArrowLeft", "q"]) == LEFT


def test_chord_beats_single_keys_whatever_the_order() -> None:
    mapping = arrows()
    assert mapping.action_for(["ArrowUp", "ArrowLeft"]) == UP_LEFT
    assert mapping.action_for(["ArrowLeft", "ArrowUp"]) == UP_LEFT
    # A single key pressed after the chord was completed does not break the chord.
    assert mapping.action_for(["ArrowLeft", "ArrowUp", "ArrowDown"]) == UP_LEFT


def test_larger_chord_beats_smaller_chord() -> None:
    mapping = arrows()
    assert mapping.action_for(["ArrowUp", "ArrowLeft", "Space"]) == UP_LEFT_FIRE
    assert mapping.action_for(["Space", "ArrowLeft", "ArrowUp"]) == UP_LEFT_FIRE


def test_among_equal_size_chords_the_most_recently_completed_wins() -> None:
    mapping = KeyMapping({("a", "b"): 1, ("c", "d"): 2}, 0)
    assert mapping.action_for(["a", "c", "d", "b"]) == 1  # a+b completed last (by b)
    assert mapping.action_for(["a", "b", "c", "d"]) == 2
    assert mapping.action_for(["c", "a", "b", "d"]) == 2


def test_partial_chord_falls_back_to_single_keys() -> None:
    mapping = KeyMapping({("a", "b"): 1, "a": 2}, 0)
    assert mapping.action_for(["a"]) == 2
    assert mapping.action_for(["b"]) == 0  # b alone is not bound


def test_key_listed_twice_counts_at_its_latest_position() -> None:
    mapping = arrows()
    assert mapping.action_for(["ArrowLeft", "ArrowRight", "ArrowLeft"]) == LEFT
    chords = KeyMapping({("a", "b"): 1, ("c", "d"): 2}, 0)
    assert chords.action_for(["a", "b", "c", "d", "a"]) == 1


def test_action_for_accepts_tuples() -> None:
    assert arrows().action_for(("ArrowRight", "ArrowLeft")) == LEFT


def test_default_action_can_be_any_value() -> None:
    mapping = KeyMapping({"a": [1, 0]}, default_action=[0, 0])
    assert mapping.action_for([]) == [0, 0]
    assert mapping.action_for(["a"]) == [1, 0]


# Reference implementation of the documented rules, written independently of the module.
def reference_action(bindings: dict[frozenset[str], int], default: int, held: list[str]) -> int:
    latest = {k: i for i, k in enumerate(held)}
    complete = [(keys, action) for keys, action in bindings.items() if len(keys) > 1 and keys <= latest.keys()]
    if complete:
        keys, action = max(complete, key=lambda c: (len(c[0]), max(latest[k] for k in c[0])))
        return action
    singles = {next(iter(k)): a for k, a in bindings.items() if len(k) == 1}
    mapped = [k for k in latest if k in singles]
    if mapped:
        return singles[max(mapped, key=lambda k: latest[k])]
    return default


KEY_POOL = ["a", "b", "c", "d", "e", "ArrowUp", "ArrowLeft", "Space"]
key_sets = st.frozensets(st.sampled_from(KEY_POOL), min_size=1, max_size=4)
mappings = st.dictionaries(key_sets, st.integers(0, 50), min_size=1, max_size=10)
held_lists = st.lists(st.sampled_from(KEY_POOL + ["q", "Tab"]), max_size=10)


@settings(max_examples=300, deadline=None)
@given(bindings=mappings, default=st.integers(100, 110), held=held_lists)
def test_action_for_follows_the_documented_rules(bindings: dict, default: int, held: list[str]) -> None:
    mapping = KeyMapping({tuple(sorted(k)): a for k, a in bindings.items()}, default)
    action = mapping.action_for(held)
    assert action in mapping.actions()
    assert action == reference_action(bindings, default, held)


@settings(max_examples=200, deadline=None)
@given(bindings=mappings, held=held_lists)
def test_action_for_is_unchanged_by_unknown_keys(bindings: dict, held: list[str]) -> None:
    mapping = KeyMapping({tuple(sorted(k)): a for k, a in bindings.items()}, -1)
    known = [k for k in held if k in mapping.keys]
    assert mapping.action_for(held) == mapping.action_for(known)


# -- validate_actions -----------------------------------------------------------------------------------------
def test_validate_actions_accepts_actions_inside_the_space() -> None:
    seen: list[object] = []

    def contains(action: object) -> bool:
        seen.append(action)
        return True

    arrows().validate_actions(contains, "here")
    assert seen == arrows().actions()


def test_validate_actions_names_the_first_bad_binding() -> None:
    mapping = KeyMapping({"a": 1, ("b", "C"): 9, "d": 10}, 0)
    with pytest.raises(ControlsError) as info:
        mapping.validate_actions(lambda a: a < 5, "GymScene 'g'")
    assert str(info.value) == (
        "GymScene 'g': keys ['b', 'c'] map to action 9, which is outside the environment's action space"
    )


def test_validate_actions_checks_the_default_action() -> None:
    mapping = KeyMapping({"a": 1}, default_action=-1)
    with pytest.raises(ControlsError) as info:
        mapping.validate_actions(lambda a: a >= 0, "scene x")
    assert str(info.value) == "scene x: default_action -1 is outside the action space"


# -- config round trip ----------------------------------------------------------------------------------------
def test_to_config_shape() -> None:
    config = KeyMapping({"A": 1, ("Up", "Left"): 2}, 0).to_config()
    assert config == {
        "bindings": [[["a"], 1], [["ArrowLeft", "ArrowUp"], 2]],
        "default_action": 0,
        "keys": ["ArrowLeft", "ArrowUp", "a"],
    }
    assert json.loads(json.dumps(config)) == config


def test_from_config_round_trip_through_json() -> None:
    original = arrows()
    rebuilt = KeyMapping.from_config(json.loads(json.dumps(original.to_config())))
    assert rebuilt.bindings == original.bindings
    assert rebuilt.default_action == original.default_action
    assert rebuilt.keys == original.keys
    assert rebuilt.to_config() == original.to_config()


@settings(max_examples=200, deadline=None)
@given(bindings=mappings, default=st.integers(-5, 5), held=held_lists)
def test_round_trip_preserves_decisions(bindings: dict, default: int, held: list[str]) -> None:
    original = KeyMapping({tuple(sorted(k)): a for k, a in bindings.items()}, default)
    rebuilt = KeyMapping.from_config(json.loads(json.dumps(original.to_config())))
    assert rebuilt.action_for(held) == original.action_for(held)
    assert rebuilt.to_config() == original.to_config()


# -- clean_held_keys --------------------------------------------------------------------------------------------
ALLOWED = ["ArrowLeft", "ArrowRight", "Space", "a"]


def test_clean_held_keys_keeps_allowed_keys_in_order() -> None:
    assert clean_held_keys(["ArrowRight", "ArrowLeft"], ALLOWED) == ["ArrowRight", "ArrowLeft"]


def test_clean_held_keys_normalises() -> None:
    assert clean_held_keys(["A", " ", "Left"], ALLOWED) == ["a", "Space", "ArrowLeft"]


def test_clean_held_keys_drops_unknown_and_junk() -> None:
    raw = ["q", 3, None, "", "x" * 33, ["a"], {"k": 1}, True, "ArrowLeft"]
    assert clean_held_keys(raw, ALLOWED) == ["ArrowLeft"]


def test_clean_held_keys_duplicate_moves_to_latest_position() -> None:
    assert clean_held_keys(["a", "ArrowLeft", "A"], ALLOWED) == ["ArrowLeft", "a"]


def test_clean_held_keys_limit() -> None:
    allowed = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    raw = list("abcdefghijklmnopqrstuvwxyz")
    assert clean_held_keys(raw, allowed) == raw[:16]
    assert clean_held_keys(raw, allowed, limit=3) == ["a", "b", "c"]
    assert clean_held_keys(raw, allowed, limit=0) == []


def test_clean_held_keys_accepts_any_iterable() -> None:
    assert clean_held_keys(iter(["a", "Space"]), iter(ALLOWED)) == ["a", "Space"]


@settings(max_examples=200, deadline=None)
@given(raw=st.lists(st.one_of(st.text(max_size=40), st.integers(), st.none(), st.sampled_from(ALLOWED)),
                    max_size=40))
def test_clean_held_keys_output_is_allowed_distinct_and_bounded(raw: list) -> None:
    out = clean_held_keys(raw, ALLOWED)
    assert set(out) <= set(ALLOWED)
    assert len(out) == len(set(out))
    assert len(out) <= 16


# -- TickKeys ---------------------------------------------------------------------------------------------------
def test_tick_keys_return_values() -> None:
    state = TickKeys()
    assert state.press("a") is True
    assert state.press("a") is False  # auto-repeat
    assert state.release("b") is False
    assert state.release("a") is True
    assert state.release("a") is False
    assert state.release_all() is False
    state.press("b")
    assert state.release_all() is True
    assert state.held == []


def test_held_is_a_copy() -> None:
    state = TickKeys()
    state.press("a")
    state.held.append("b")
    assert state.held == ["a"]


def test_forget_taps_keeps_held_keys() -> None:
    state = TickKeys()
    state.press("a")
    state.release("a")
    state.press("b")
    state.forget_taps()
    assert state.sample() == ["b"]


def test_clear_forgets_everything() -> None:
    state = TickKeys()
    state.press("a")
    state.press("b")
    state.release("b")
    state.clear()
    assert state.held == [] and state.sample() == []


def test_apply_held_reads_a_reordered_list_as_a_release_and_a_new_press() -> None:
    state = TickKeys()
    state.apply_held(["a", "b", "c"])
    assert state.sample() == ["a", "b", "c"]
    state.apply_held(["a", "c", "b"])  # b was released and pressed again in updates that never arrived
    assert state.held == ["a", "c", "b"]
    assert state.sample() == ["a", "c", "b"]
    state.apply_held(["b"])
    assert state.sample() == ["b"]


def test_apply_held_with_duplicates_keeps_the_first() -> None:
    state = TickKeys()
    state.apply_held(["a", "b", "a"])
    assert state.held == ["a", "b"]


def reference_ticks(events: list[tuple[str, str]]) -> list[list[str]]:
    """The tick rule stated over press intervals, independently of TickKeys.

    A press is (start, end) in event positions; it counts on a tick at position T (previous tick P) if it is
    held at T (start < T, end None or > T) or lies entirely between the ticks (P < start, end < T). A key's
    position in the tick's list is the start of its latest counting press.
    """
    presses: list[list] = []  # [key, start, end or None]
    open_press: dict[str, list] = {}
    for i, (kind, key) in enumerate(events):
        if kind == "down" and key not in open_press:
            open_press[key] = [key, i, None]
            presses.append(open_press[key])
        elif (kind == "up" and key in open_press) or kind == "blur":
            for released in [key] if kind == "up" else list(open_press):
                open_press.pop(released)[2] = i
    ticks: list[list[str]] = []
    previous = -1
    for t, (kind, _) in enumerate(events):
        if kind != "tick":
            continue
        latest: dict[str, int] = {}
        for key, start, end in presses:
            held = start < t and (end is None or end > t)
            tapped = previous < start and end is not None and end < t
            if held or tapped:
                latest[key] = max(latest.get(key, -1), start)
        ticks.append(sorted(latest, key=latest.__getitem__))
        previous = t
    return ticks


event_lists = st.lists(st.one_of(st.tuples(st.sampled_from(["down", "up"]), st.sampled_from("abcd")),
                                 st.just(("tick", "")), st.just(("blur", ""))), max_size=40)


def run_tick_keys(events: list[tuple[str, str]]) -> list[list[str]]:
    state = TickKeys()
    ticks = []
    for kind, key in events:
        if kind == "down":
            state.press(key)
        elif kind == "up":
            state.release(key)
        elif kind == "blur":
            state.release_all()
        else:
            ticks.append(state.sample())
    return ticks


def run_from_held_lists(events: list[tuple[str, str]]) -> list[list[str]]:
    """Server mode: only the held list after each event reaches TickKeys."""
    state = TickKeys()
    held: list[str] = []
    ticks = []
    for kind, key in events:
        if kind == "down" and key not in held:
            held.append(key)
        elif kind == "up" and key in held:
            held.remove(key)
        elif kind == "blur":
            held = []
        elif kind == "tick":
            ticks.append(state.sample())
            continue
        state.apply_held(held)
    return ticks


@settings(max_examples=500, deadline=None)
@given(events=event_lists)
def test_tick_keys_follow_the_interval_statement_of_the_rule(events: list[tuple[str, str]]) -> None:
    assert run_tick_keys(events) == reference_ticks(events)


@settings(max_examples=500, deadline=None)
@given(events=event_lists)
def test_held_lists_give_the_same_ticks_as_presses_and_releases(events: list[tuple[str, str]]) -> None:
    assert run_from_held_lists(events) == run_tick_keys(events)
