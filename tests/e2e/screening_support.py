"""Helpers for the screening e2e tests (real Chromium against a real server and database): the solo game a rule
ends for the player, opening a page as a subject, starting its game, and reading the events of one participant."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lifecycle_support import OneCounter, draw_counter, read_db
from playwright.sync_api import Page, expect

from interactive_gym import GymScene, StartScene


def consent_scene() -> StartScene:
    """The consent page every screening study starts with."""
    return StartScene("consent", body_html="<p>Hello</p>")


def solo_game(exclusion: list[Any] | None = None) -> GymScene:
    """A server-mode game of one agent whose episode never ends on its own: it runs until a rule ends it."""
    return GymScene("solo", env_creator=OneCounter, render_fn=draw_counter, width=64, height=64,
                    controls={"ArrowUp": 1}, fps=10, max_steps=100_000,
                    exclusion=exclusion)


def open_page(new_context: Any, url: str, subject: str, **context: Any) -> Page:
    """A new browser context (``context``: e.g. its viewport) with the study open as ``subject``."""
    page = new_context(**context).new_page()
    page.goto(f"{url}/?subject_id={subject}")
    return page


def start_game(page: Page) -> None:
    """Consents and continues to the game; returns once it plays."""
    page.locator("#consent").check()
    page.locator("#continue").click()
    expect(page.locator("#game-status")).to_have_attribute("data-state", "playing", timeout=15_000)


def events_of(db: Path, kind: str, subject: str) -> list[Any]:
    """The data of ``subject``'s events of ``kind``, oldest first."""
    return [e.data for e in read_db(db, lambda s: s.events(kind)) if e.participant_id == subject]


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> None:
    """Waits for something the server stores on its own clock; fails naming it."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.1)
