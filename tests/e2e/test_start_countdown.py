"""The start countdown in real Chromium: two participants of a server-mode pair game read "Partner found,
starting in 3…" (the default for a multi-human scene) before the game's first frame, then play."""

from __future__ import annotations

from pathlib import Path

from experiment_harness import build_app, load_example


def _enter_game(page, url: str) -> None:
    page.goto(url)
    page.check("#consent")
    page.click("#continue")


def test_partners_read_the_countdown_before_the_game_starts(live_server, new_context, tmp_path: Path) -> None:
    example = load_example("examples/demo/two_humans.py")
    server = live_server(build_app(example.build_config(max_steps=20, fps=10, db=str(tmp_path / "c.sqlite"))).asgi)
    alice, bob = new_context().new_page(), new_context().new_page()
    _enter_game(alice, f"{server.url}/?subject_id=alice")
    alice.wait_for_selector("#game-status[data-state=waiting]")
    _enter_game(bob, f"{server.url}/?subject_id=bob")
    for page in (alice, bob):
        page.wait_for_selector("#game-status[data-state=countdown]", timeout=5_000)
        text = page.text_content("#game-status")
        assert text.startswith("Partner found, starting in ") and text[-2] in "123", text
        assert page.evaluate("window.interactiveGym.game.frames") == 0  # nothing drawn: the game has not begun
    for page in (alice, bob):
        page.wait_for_selector("#game-status[data-state=playing]", timeout=10_000)
        page.wait_for_function("window.interactiveGym.game.frames > 3")
        assert "Partner found" not in page.text_content("#game-status")
    for page in (alice, bob):
        page.wait_for_selector("#game-status[data-state=over]", timeout=15_000)
        assert page.get_attribute("#game-status", "data-reason") == "complete"
