"""Browser mode end to end in headless Chromium: Pyodide runs the demo env, onnxruntime-web the AI partner.

The uploader in the test page acknowledges into ``window.received``; the tests then validate and store the
payloads exactly as the server does (``upload_validation`` + ``DataWriter``) and run ``interactive-gym
replay`` on the database.
"""

from __future__ import annotations

import time
from itertools import groupby

import pytest
from browser_runtime_support import MAPPING, BrowserTestSite, gatherers, onnx_partner, store_uploads
from db_under_test import location_for, open_storage

from interactive_gym.cli import main
from interactive_gym.server.upload_validation import EpisodeUpload

pytestmark = pytest.mark.e2e
LOAD_TIMEOUT = 60_000


def open_game(new_context, server, name, extra=""):
    page = new_context().new_page()
    page.goto(f"{server.url}/test-pages/browser_game.html?config=/test-config/{name}{extra}")
    return page


def wait_status(page, condition_js, timeout=LOAD_TIMEOUT):
    page.wait_for_function(f"window.statuses.some(s => {condition_js})", timeout=timeout)


def key_runs(steps):
    """Consecutive runs of the human's held keys, empty runs dropped: what the participant pressed, in order."""
    return [keys for keys, _ in groupby(tuple(s["keys"]["agent_0"]) for s in steps) if keys]


def test_human_plays_two_episodes_against_onnx_and_the_data_replays(
    live_server, new_context, tmp_path, capsys
) -> None:
    site = BrowserTestSite()
    config = site.add_scene("solo", policy_mapping={"agent_0": "human", "agent_1": onnx_partner(tmp_path)},
                            seeds=[101, 202], num_episodes=2, max_steps=45)
    server = live_server(site.app())
    page = open_game(new_context, server, "solo")

    presses = [["ArrowRight", "ArrowDown"], ["ArrowLeft"]]
    for episode, keys in enumerate(presses):
        wait_status(page, f"s.phase === 'playing' && s.episode === {episode}")
        for key in keys:
            # Hold for 6 frames, then release for 3: counted in game frames, not seconds, so a slow machine
            # cannot merge two presses into one frame.
            start = page.evaluate("window.game.host.t")
            page.keyboard.down(key)
            page.wait_for_function(f"window.game.host.t >= {start + 6}", timeout=10_000)
            released = page.evaluate("window.game.host.t")
            page.keyboard.up(key)
            page.wait_for_function(f"window.game.host.t >= {released + 3}", timeout=10_000)
    page.wait_for_function("window.gameResult !== undefined", timeout=30_000)
    result = page.evaluate("window.gameResult")
    assert result["error"] is None and result["uploadErrors"] == []
    payloads = page.evaluate("window.received")
    assert [p["episode"] for p in payloads] == [0, 1]

    for payload, keys in zip(payloads, presses, strict=True):
        assert payload["seed"] == config["seeds"][payload["episode"]]
        assert payload["bundle_hash"] == config["bundle"]["hash"]
        assert payload["partial"] is False and payload["end_reason"] == "done"
        steps = payload["steps"]
        assert [s["t"] for s in steps] == list(range(45))
        # What was stored is what was pressed, in order, and each step's action follows from its keys.
        assert key_runs(steps) == [(k,) for k in keys]
        for s in steps:
            assert s["actions"]["agent_0"] == MAPPING.action_for(s["keys"]["agent_0"])
        # The ONNX partner (frame_skip=2) picks an action on even frames and repeats it on odd ones.
        partner = [s["actions"]["agent_1"] for s in steps]
        assert all(0 <= a < 5 for a in partner)
        assert all(partner[i] == partner[i + 1] for i in range(0, 44, 2))
        assert steps[-1]["truncated"] == {"agent_0": True, "agent_1": True}

    # Loading reported real download progress, then every later stage, never going backwards.
    loading = page.evaluate("window.statuses.filter(s => s.phase === 'loading')")
    progress = [s["progress"] for s in loading]
    assert progress == sorted(progress) and progress[-1] == 1
    assert max(s.get("totalBytes", 0) for s in loading) > 9_000_000
    assert {"download", "files", "env"} <= {s["stage"] for s in loading}

    db = tmp_path / "data.sqlite"
    results = store_uploads(db, config, payloads, participant="P1")
    assert all(isinstance(r, EpisodeUpload) for r in results), results
    for episode in (0, 1):
        assert main(["replay", str(location_for(db)), "--participant", "P1", "--episode", str(episode)]) == 0
        assert "reproduced: all 45 steps match" in capsys.readouterr().out


def test_ai_episodes_are_reproducible_from_the_seed_and_a_hidden_tab_pauses(
    live_server, new_context, tmp_path
) -> None:
    site = BrowserTestSite()
    site.add_scene("bots", policy_mapping={"agent_0": gatherers.greedy_policy,
                                           "agent_1": onnx_partner(tmp_path, sample=True, frame_skip=1)},
                   seeds=[7], max_steps=60)
    site.add_scene("bots_other_seed", policy_mapping={"agent_0": gatherers.greedy_policy,
                                                      "agent_1": onnx_partner(tmp_path, sample=True, frame_skip=1)},
                   seeds=[8], max_steps=60)
    server = live_server(site.app())

    # First run: hide the tab for a while in the middle.
    page = open_game(new_context, server, "bots")
    page.wait_for_function("window.game && window.game.host && window.game.host.t >= 15", timeout=LOAD_TIMEOUT)
    page.evaluate("""() => {
        Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    wait_status(page, "s.phase === 'paused'", timeout=5_000)
    t_hidden = page.evaluate("window.game.host.t")
    time.sleep(0.6)
    assert page.evaluate("window.game.host.t") == t_hidden, "a hidden tab must not advance the game"
    page.evaluate("""() => {
        Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'visible'});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    page.wait_for_function("window.gameResult !== undefined", timeout=30_000)
    first = page.evaluate("window.received")[0]
    assert len(first["pauses"]) == 1
    assert first["pauses"][0]["t"] == t_hidden and first["pauses"][0]["ms"] >= 500

    second = open_game(new_context, server, "bots")
    second.wait_for_function("window.gameResult !== undefined", timeout=LOAD_TIMEOUT)
    again = second.evaluate("window.received")[0]
    other = open_game(new_context, server, "bots_other_seed")
    other.wait_for_function("window.gameResult !== undefined", timeout=LOAD_TIMEOUT)
    different = other.evaluate("window.received")[0]

    def actions(payload):
        return [(s["actions"]["agent_0"], s["actions"]["agent_1"]) for s in payload["steps"]]

    assert len(actions(first)) == 60
    assert actions(first) == actions(again), "same seed, no human: the sampled ONNX actions must repeat"
    assert [s["rewards"] for s in first["steps"]] == [s["rewards"] for s in again["steps"]]
    assert again["pauses"] == []
    assert actions(first) != actions(different)
    assert len({a for _, a in actions(first)}) > 1, "sampling explores more than one action"


def test_closing_the_tab_mid_episode_keeps_the_partial_episode(live_server, new_context, tmp_path) -> None:
    site = BrowserTestSite()
    config = site.add_scene("long", policy_mapping={"agent_0": "human", "agent_1": onnx_partner(tmp_path)},
                            seeds=[5], max_steps=600)
    server = live_server(site.app())
    context = new_context()
    page = context.new_page()
    page.goto(f"{server.url}/test-pages/browser_game.html?config=/test-config/long&beacon=/test-beacon")
    page.wait_for_function("window.game && window.game.host && window.game.host.t >= 10", timeout=LOAD_TIMEOUT)
    page.keyboard.down("ArrowUp")
    page.wait_for_function("window.game.host.t >= 25", timeout=10_000)
    page.keyboard.up("ArrowUp")
    page.close(run_before_unload=True)

    # The beacon reached the server...
    deadline = time.monotonic() + 10
    while not site.beacons and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(site.beacons) == 1
    beacon = site.beacons[0]
    assert beacon["partial"] is True and beacon["end_reason"] == "page_closed"
    assert 25 <= len(beacon["steps"]) < 600
    assert ("ArrowUp",) in {tuple(s["keys"]["agent_0"]) for s in beacon["steps"]}

    # ...and the next page load of the same participant sends the stashed copy through the normal upload.
    reopened = context.new_page()
    reopened.goto(f"{server.url}/test-pages/browser_game.html?resend=1&play=0")
    reopened.wait_for_function("window.resendDone === true", timeout=10_000)
    resent = reopened.evaluate("window.received")
    assert len(resent) == 1 and resent[0]["steps"] == beacon["steps"]
    assert reopened.evaluate("Object.keys(window.uploader.readStash()).length") == 0

    db = tmp_path / "data.sqlite"
    (result,) = store_uploads(db, config, resent, participant="P9")
    assert isinstance(result, EpisodeUpload), result
    with open_storage(db) as storage:
        (row,) = storage.episodes()
        assert row.status == "partial" and row.mode == "browser" and row.meta["end_reason"] == "page_closed"
        assert row.step_count == len(beacon["steps"])


def test_an_env_exception_shows_a_message_and_keeps_the_steps(live_server, new_context) -> None:
    import browser_test_envs

    site = BrowserTestSite()
    site.add_scene("buggy", env_creator=browser_test_envs.make_breaking_env, env_kwargs={"break_at": 12},
                   policy_mapping={"agent_0": "human", "agent_1": gatherers.greedy_policy}, seeds=[3], max_steps=100,
                   extra_modules=("gatherers",))
    server = live_server(site.app())
    page = open_game(new_context, server, "buggy")
    page.wait_for_function("window.gameResult !== undefined", timeout=LOAD_TIMEOUT)
    result = page.evaluate("window.gameResult")
    assert "ZeroDivisionError" in result["error"]
    assert "error" in page.inner_text(".ig-game-message") and "saved" in page.inner_text(".ig-game-message")
    error_status = page.evaluate("window.statuses.find(s => s.phase === 'error' && s.traceback)")
    assert "browser_test_envs.py" in error_status["traceback"] and "1 / 0" in error_status["traceback"]
    (payload,) = page.evaluate("window.received")
    assert payload["partial"] is True and payload["end_reason"] == "error"
    assert "ZeroDivisionError" in payload["error"]
    assert len(payload["steps"]) == 11


def test_a_failed_load_offers_retry_and_no_webassembly_is_explained(live_server, new_context, tmp_path) -> None:
    site = BrowserTestSite()
    site.add_scene("retry", policy_mapping={"agent_0": "human", "agent_1": gatherers.greedy_policy}, seeds=[1],
                   max_steps=5)
    site.manifest_failures = 1
    server = live_server(site.app())
    page = open_game(new_context, server, "retry")
    page.wait_for_selector(".ig-loading-retry:visible", timeout=LOAD_TIMEOUT)
    assert "could not be loaded" in page.inner_text(".ig-loading-error")
    page.click(".ig-loading-retry")
    page.wait_for_function("window.gameResult !== undefined", timeout=LOAD_TIMEOUT)
    assert page.evaluate("window.received.length") == 1

    # A package the (offline, wheel-less) self-hosted Pyodide cannot provide: a clear message, not a hang.
    site.add_scene("needs_numpy", policy_mapping={"agent_0": "human", "agent_1": gatherers.greedy_policy},
                   seeds=[1], max_steps=5, pyodide={"packages": ["numpy"]})
    numpy_page = open_game(new_context, server, "needs_numpy")
    numpy_page.wait_for_selector(".ig-loading-retry:visible", timeout=LOAD_TIMEOUT)
    assert "packages could not be loaded" in numpy_page.inner_text(".ig-loading-error")
    failed = numpy_page.evaluate("window.statuses.find(s => s.phase === 'load_failed')")
    assert "numpy" in failed["detail"]

    context = new_context()
    context.add_init_script("delete globalThis.WebAssembly;")
    no_wasm = context.new_page()
    no_wasm.goto(f"{server.url}/test-pages/browser_game.html?config=/test-config/retry")
    no_wasm.wait_for_selector(".ig-loading-error:visible", timeout=10_000)
    assert "WebAssembly" in no_wasm.inner_text(".ig-loading-error")
