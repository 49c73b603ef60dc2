"""input_delay="auto" in real Chromium pairs over the project's seeded transport fault injector.

At 0, 50, 100 and 200 ms RTT (jitter 15% of it, 10% loss) two pages play two short episodes of Fruit Gatherers.
Both peers must play each episode with the same delay (player 0's announced choice, stored with each upload), a
smaller one at 0 ms than at 200 ms, and their exports must agree frame by frame with no desync.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from p2p_experiments import open_player, p2p_app, play_randomly, read_db, wait_over, wait_playing

RTTS = (0, 50, 100, 200)
MAX_STEPS = 75  # 2.5 s per episode at 30 fps
EPISODES = 2
COMPARED = ("t", "actions", "rewards", "terminated", "truncated")


@pytest.fixture(autouse=True)
def no_turn_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own TURN settings must never leak into a test (or send traffic off loopback)."""
    for name in ("TURN_USERNAME", "TURN_CREDENTIAL", "TURN_SECRET", "TURN_URLS", "STUN_URLS"):
        monkeypatch.delenv(name, raising=False)


def test_auto_delay_grows_with_rtt_and_both_peers_agree(live_server, new_context, tmp_path: Path) -> None:
    chosen: dict[int, list[int]] = {}
    for rtt in RTTS:
        db = tmp_path / f"auto{rtt}.sqlite"
        faults = {"seed": rtt + 11, "rttMs": rtt, "jitterMs": round(0.15 * rtt, 1), "loss": 0.1}
        server = live_server(p2p_app(db, max_steps=MAX_STEPS, num_episodes=EPISODES, input_delay="auto",
                                     faults=faults).asgi)
        contexts = [new_context() for _ in range(2)]
        pages = [open_player(ctx.new_page(), server.url, f"auto{rtt}-{i}") for i, ctx in enumerate(contexts)]
        wait_playing(pages)
        play_randomly(pages, seed=rtt, gap_ms=150)
        assert [wait_over(page) for page in pages] == ["complete", "complete"]
        data = read_db(db)
        episodes = data["episodes"]
        assert [(e["episode"], e["status"]) for e in episodes] == [(0, "complete")] * 2 + [(1, "complete")] * 2
        assert data["verdicts"] and all(v["agree"] for v in data["verdicts"]), data["verdicts"]
        delays = []
        for number in range(EPISODES):
            a, b = (e for e in episodes if e["episode"] == number)
            assert [s["t"] for s in a["steps"]] == list(range(MAX_STEPS))
            for field in COMPARED:  # the exports agree frame by frame
                assert [s[field] for s in a["steps"]] == [s[field] for s in b["steps"]], (rtt, number, field)
            networks = [a["meta"]["network"], b["meta"]["network"]]
            assert all(n["desyncs"] == [] and n["packets"]["row_mismatches"] == 0 for n in networks)
            assert all(n["packets"]["faults"]["rttMs"] == rtt for n in networks)
            stored = {n["input_delay"] for n in networks}
            assert len(stored) == 1, (rtt, number, stored)  # both peers played the episode with one delay
            delays.append(stored.pop())
        assert all(0 <= d <= 6 for d in delays)
        chosen[rtt] = delays
        for page in pages:
            page.close()  # frees the page's Pyodide before the next pair loads
    print("auto input delay by RTT (per episode):", chosen)
    assert chosen[0][0] < chosen[200][0], chosen
    assert all(chosen[a][0] <= chosen[b][0] for a, b in zip(RTTS, RTTS[1:], strict=False)), chosen
