"""A chaos run in real Chromium: ten participants with seeded random behaviour go through a whole experiment.

The experiment is consent -> instructions -> a server-mode game for two -> a browser-mode game (Pyodide, a
scripted partner) -> a p2p game for two -> the end page. Each participant is one browser context of one shared
Chromium, driven by its own asyncio task from a :class:`Plan` drawn with ``random.Random(seed * 1000 + i)``: double
clicks on Continue, the tab hidden and shown, a reload, going offline for a few seconds, closing the tab for
good, and game keys pressed while playing.

A participant acts like a person would: whatever the page shows, they respond to it (tick consent, click an
enabled Continue, press keys while playing) until the page is *clear*:

* the end page: ``.scene-end`` (completed, or with ``#notice`` when the waiting room timed out), or
* a refusal: ``[data-refused]`` (another tab, already finished, not this browser's session).

A game that could not load shows its message with a Retry button (``.ig-loading-retry``); the participant
clicks it.
A game-over page (``#game-status[data-state=over]``, or a page scene with ``#game-over``) is not an end: it has
a ``#continue`` the participant clicks. Whoever has not reached a clear page within :data:`BOUND_S` of opening
the link is *stranded*. The checks of the database are in ``chaos_checks.py``.
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, async_playwright

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "examples" / "demo") not in sys.path:
    sys.path.insert(0, str(ROOT / "examples" / "demo"))

import gatherers  # noqa: E402  (the demo's env, shipped into Pyodide like any experiment module)
from conftest import BASE_ARGS, CHROMIUM, LiveServer  # noqa: E402
from experiment_harness import build_app, run_async  # noqa: E402

from interactive_gym import EndScene, GymScene, RemoteConfig, Stager, StartScene, StaticScene  # noqa: E402

PARTICIPANTS = 10
SERVER_SCENE, BROWSER_SCENE, P2P_SCENE = "pair_server", "solo_browser", "pair_p2p"
GAME_SCENES = (SERVER_SCENE, BROWSER_SCENE, P2P_SCENE)
# Small, fast games: fractions of a minute each at 30 fps.
FPS = 30
SERVER_STEPS, BROWSER_STEPS, BROWSER_EPISODES, P2P_STEPS = 90, 60, 2, 120
WAITING_TIMEOUT_S = 30.0  # long enough that most arrivals find a partner, short enough to time some out
GRACE_S = 4.0       # disconnect_grace_s of the game scenes
DROP_AFTER_S = 5.0  # page scenes: gone this long counts as dropped
COMPLETION_CODE = "CHAOS1"
ARRIVALS_S = 10.0   # participants open the link at random times in the first ARRIVALS_S seconds
# One start of the in-browser game while the other pages start theirs: ten pages starting Pyodide at once on two
# cores took up to ~85 s in CI (82 s measured for the slowest; one page alone takes ~3 s).
GAME_LOAD_S = 90.0
# Every participant who does not leave must be on a clear page within this many seconds of opening the link: the
# longest path that is not stuck (arriving last, waiting out both multi-human rooms, two starts of the in-browser
# game after a reload while it loads, and about 30 s for the pages, the games and a p2p connection). The slowest
# participant took 177 s in a CI run against a bound of 180 s, one reload from failing; a stranded page never
# gets there, whatever the bound.
BOUND_S = ARRIVALS_S + 2 * WAITING_TIMEOUT_S + 2 * GAME_LOAD_S + 30.0
GAME_KEYS = ("ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight")
CONTROLS = {"ArrowUp": gatherers.UP, "ArrowDown": gatherers.DOWN, "ArrowLeft": gatherers.LEFT,
            "ArrowRight": gatherers.RIGHT}
# What the page shows, read in one call (the selectors and data attributes the scene modules already set).
OBSERVE = """() => {
  const status = document.getElementById("game-status");
  const next = document.getElementById("continue");
  const consent = document.getElementById("consent");
  const retry = document.querySelector(".ig-loading-retry");
  const msg = window.interactiveGym?.scene;
  return {
    index: msg?.index ?? null, scene: msg?.scene?.scene_id ?? null, kind: msg?.scene?.kind ?? null,
    end: !!document.querySelector(".scene-end"), refused: document.querySelector("[data-refused]")?.dataset.refused ?? null,
    notice: document.getElementById("notice")?.textContent ?? null,
    code: document.getElementById("completion-code")?.textContent ?? null,
    state: status?.dataset.state ?? null, reason: status?.dataset.reason ?? null,
    gameOver: document.getElementById("game-over")?.textContent ?? null,
    canContinue: !!next && !next.hidden && !next.disabled, consentUnticked: !!consent && !consent.checked,
    canRetry: !!retry && !retry.hidden,
  };
}"""
# Hidden tab: headless Chromium keeps every page visible, so the page's own view of it is changed (document.hidden
# and visibilityState, both read by the scene modules) and the real event is dispatched, which runs every
# visibilitychange handler the page registered. Showing the tab again removes the overrides (back to the
# browser's own getters) and dispatches the event again.
SET_HIDDEN = """(hidden) => {
  if (hidden) {
    Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
  } else {
    delete document.hidden;
    delete document.visibilityState;
  }
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def chaos_config(db: Path, seed: int) -> RemoteConfig:
    """The chaos experiment (its own database; loopback-only WebRTC, no STUN)."""

    def game(scene_id: str, mode: str, partner: Any, max_steps: int, num_episodes: int = 1) -> GymScene:
        width, height = gatherers.canvas_size()
        return GymScene(scene_id, env_creator=gatherers.make_env, render_fn=gatherers.render, width=width,
                        height=height, controls=CONTROLS, default_action=gatherers.STAY,
                        policy_mapping={"agent_0": "human", "agent_1": partner}, mode=mode, fps=FPS,
                        max_steps=max_steps, num_episodes=num_episodes, seed=seed * 1000,
                        waiting_room_timeout_s=WAITING_TIMEOUT_S, disconnect_grace_s=GRACE_S,
                        title=f"{mode} game")

    stager = Stager([
        StartScene("consent", title="Welcome", body_html="<p>A chaos test.</p>"),
        StaticScene("instructions", title="How to play", body_html="<p>Arrow keys move.</p>"),
        game(SERVER_SCENE, "server", "human", SERVER_STEPS),
        game(BROWSER_SCENE, "browser", gatherers.greedy_policy, BROWSER_STEPS, BROWSER_EPISODES),
        game(P2P_SCENE, "p2p", "human", P2P_STEPS),
        EndScene("end", completion_code=COMPLETION_CODE),
    ])
    return RemoteConfig().experiment(f"chaos_{seed}", stager=stager, db=db).webrtc(stun_urls=[])


def scene_max_steps() -> dict[str, int]:
    return {SERVER_SCENE: SERVER_STEPS, BROWSER_SCENE: BROWSER_STEPS, P2P_SCENE: P2P_STEPS}


# -- plans ------------------------------------------------------------------------------------------------------
# Where each disruption can happen: the page states of each scene it is triggered in.
TRIGGERS: dict[str, tuple[str, ...]] = {
    "instructions": ("page",),
    SERVER_SCENE: ("waiting", "playing"),
    BROWSER_SCENE: ("loading", "playing"),
    P2P_SCENE: ("waiting", "connecting", "playing"),
}


@dataclass(frozen=True)
class Disruption:
    """One thing that happens to a participant: ``action`` once the page shows ``state`` on ``scene``.

    Attributes:
        scene: Scene id it happens on.
        state: Page state that triggers it (``#game-status`` data-state, or ``page`` on a page scene).
        action: ``hide`` (tab hidden, then shown), ``offline``, ``reload`` or ``close`` (leaves for good).
        delay_s: Seconds after the trigger state was seen.
        seconds: How long hidden or offline.
    """

    scene: str
    state: str
    action: str
    delay_s: float
    seconds: float = 0.0


@dataclass(frozen=True)
class Plan:
    """One participant's seeded behaviour."""

    subject: str
    seed: int
    start_delay_s: float
    double_click: bool
    disruptions: tuple[Disruption, ...]

    @property
    def leaves(self) -> bool:
        return any(d.action == "close" for d in self.disruptions)


def make_plan(seed: int, index: int) -> Plan:
    """Participant ``index``'s plan, from ``random.Random(seed * 1000 + index)`` (``seed + index`` would give
    run ``seed + 1`` the plans of run ``seed`` shifted by one participant)."""
    rng = random.Random(seed * 1000 + index)
    disruptions = []
    for scene in GAME_SCENES:
        for _ in range(rng.choice((0, 1, 1, 2))):
            action = rng.choice(("hide", "offline", "reload"))
            seconds = round(rng.uniform(2.0, 5.0), 2) if action == "offline" else round(rng.uniform(0.5, 3.0), 2)
            disruptions.append(Disruption(scene, rng.choice(TRIGGERS[scene]), action, round(rng.uniform(0, 1.5), 2),
                                          seconds))
    if rng.random() < 0.2:  # about one in five leaves for good somewhere
        scene = rng.choice(("instructions", *GAME_SCENES))
        disruptions.append(Disruption(scene, rng.choice(TRIGGERS[scene]), "close", round(rng.uniform(0, 1.5), 2)))
    # Arrivals spread over ARRIVALS_S: people do not all click the link in the same second (and ten Pyodide
    # loads at once on two cores would mostly measure the machine).
    return Plan(f"chaos{seed}_{index}", seed * 1000 + index, round(rng.uniform(0, ARRIVALS_S), 2), rng.random() < 0.5,
                tuple(disruptions))


# -- driving one participant ------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What happened to one participant (the checks compare it with the database)."""

    plan: Plan
    final: dict[str, Any] | None = None       # the last observation
    clear_after_s: float | None = None        # seconds from opening the link to a clear page
    left: bool = False                        # closed the tab for good
    left_at: float | None = None              # when (time.time(), the server's clock too: one machine)
    done: list[str] = field(default_factory=list)   # disruptions that happened, in order
    errors: list[str] = field(default_factory=list)  # failed page actions (the participant tried again)
    timeline: list[tuple[float, str, str]] = field(default_factory=list)  # (s, scene, page state) changes
    console: list[str] = field(default_factory=list)

    @property
    def stranded(self) -> bool:
        return not self.left and self.clear_after_s is None

    @property
    def expected_status(self) -> str:
        """The status the database must hold for what this participant went through."""
        if self.left:
            return "dropped"
        final = self.final or {}
        if final.get("end") and final.get("notice"):
            return "timed_out"
        return "completed" if final.get("end") else "active"


async def _disrupt(context: BrowserContext, page: Page, d: Disruption) -> None:
    if d.action == "hide":
        await page.evaluate(SET_HIDDEN, True)
        await asyncio.sleep(d.seconds)
        await page.evaluate(SET_HIDDEN, False)
    elif d.action == "offline":
        await context.set_offline(True)
        await asyncio.sleep(d.seconds)
        await context.set_offline(False)
    elif d.action == "reload":
        await page.reload(wait_until="commit")
    elif d.action == "close":
        await page.close(run_before_unload=True)  # pagehide/beforeunload run, as when a person closes a tab


def _page_state(seen: dict[str, Any]) -> str | None:
    if seen["kind"] == "gym" and seen["state"]:
        return str(seen["state"])
    return "page" if seen["kind"] in ("static", "start") else None


async def drive(browser: Browser, url: str, plan: Plan) -> Outcome:
    """Runs one participant's plan until their page is clear, they left, or :data:`BOUND_S` is over."""
    outcome = Outcome(plan)
    rng = random.Random(plan.seed * 7919)
    await asyncio.sleep(plan.start_delay_s)
    context = await browser.new_context(permissions=["camera", "microphone"])
    try:
        page = await context.new_page()
        page.on("console", lambda m: outcome.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: outcome.console.append(f"pageerror: {e}"))
        started = time.monotonic()
        await page.goto(f"{url}/?subject_id={plan.subject}")
        pending = list(plan.disruptions)
        while time.monotonic() - started < BOUND_S:
            try:
                seen = await page.evaluate(OBSERVE)
            except Exception as exc:  # noqa: BLE001 - mid-navigation (reload): look again
                outcome.errors.append(f"observe: {exc}"[:200])
                await asyncio.sleep(0.2)
                continue
            outcome.final = seen
            mark = (str(seen["scene"]), str(_page_state(seen) or seen["kind"]))
            if not outcome.timeline or outcome.timeline[-1][1:] != mark:
                outcome.timeline.append((round(time.monotonic() - started, 2), *mark))
            if seen["end"] or seen["refused"]:
                outcome.clear_after_s = round(time.monotonic() - started, 2)
                return outcome
            state = _page_state(seen)
            due = next((d for d in pending if d.scene == seen["scene"] and d.state == state), None)
            if due is not None:
                pending.remove(due)
                await asyncio.sleep(due.delay_s)
                outcome.done.append(f"{due.action}@{due.scene}/{due.state}")
                try:
                    await _disrupt(context, page, due)
                except Exception as exc:  # noqa: BLE001 - recorded; the participant carries on
                    outcome.errors.append(f"{due.action}: {exc}"[:200])
                if due.action == "close":
                    outcome.left, outcome.left_at = True, time.time()
                    return outcome
                continue
            try:
                await _respond(page, seen, plan, rng)
            except Exception as exc:  # noqa: BLE001 - the page changed under the click: look again
                outcome.errors.append(f"act: {exc}"[:200])
            await asyncio.sleep(rng.uniform(0.1, 0.25))
        return outcome
    finally:
        if not outcome.left:  # a closed tab's context stays until the browser closes (its beacons go out)
            await context.close()


async def _respond(page: Page, seen: dict[str, Any], plan: Plan, rng: random.Random) -> None:
    """What a person does with what the page shows."""
    if seen["consentUnticked"]:
        await page.check("#consent", timeout=2000)
    elif seen["canRetry"]:
        await page.click(".ig-loading-retry", timeout=2000)
    elif seen["canContinue"]:
        if plan.double_click:
            await page.dblclick("#continue", timeout=2000)
        else:
            await page.click("#continue", timeout=2000)
    elif seen["state"] == "playing":
        await page.keyboard.press(rng.choice(GAME_KEYS))


# -- the whole run ----------------------------------------------------------------------------------------------
@dataclass
class ChaosRun:
    """One chaos run: the plans' outcomes, the database, and the wall time."""

    seed: int
    db: Path
    outcomes: list[Outcome]
    seconds: float


async def _run(url: str, plans: list[Plan]) -> list[Outcome]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=BASE_ARGS)
        try:
            return list(await asyncio.gather(*(drive(browser, url, plan) for plan in plans)))
        finally:
            await browser.close()


def run_chaos(seed: int, workdir: Path, participants: int = PARTICIPANTS) -> ChaosRun:
    """Serves the chaos experiment and runs ``participants`` seeded participants against it.

    Returns after every participant is on a clear page, has left, or is stranded, and after the server has had
    time to mark the leavers dropped (the drop delays) and stopped (every game and upload finished).
    """
    db = workdir / f"chaos_{seed}.sqlite"
    app = build_app(chaos_config(db, seed))
    app.server.flow.drop_after_s = DROP_AFTER_S
    server = LiveServer(app.asgi).start()
    started = time.monotonic()
    try:
        plans = [make_plan(seed, i) for i in range(participants)]
        outcomes = run_async(_run(server.url, plans))
        # Leavers are marked dropped after their scene's drop delay (housekeeping runs twice a second).
        time.sleep(max(GRACE_S, DROP_AFTER_S) + 1.5)
    finally:
        server.stop()
    return ChaosRun(seed, db, outcomes, round(time.monotonic() - started, 1))
