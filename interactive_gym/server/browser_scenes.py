"""Browser-mode scenes on the server: code bundles, each participant's scene config, and episode uploads.

The environment runs in the participant's page (Pyodide). The server ships the scene's Python files (built
once at start-up), chooses and stores every episode's seed, and stores the episodes the page uploads after
validating them against the scene (``upload_validation.py``); an upload is acknowledged only after commit.

Visits and attempts. A *visit* is a participant's pass through a browser-mode scene, keyed by
``(participant_id, scene_index)`` (its place in their sequence), so each repetition of a scene is its own
visit. Every config sent for a visit is a new *attempt* (page load), numbered 1, 2, ... and committed to the
database, with the visit's seeds, before the page gets it. Uploads name their visit and attempt; each
attempt's episodes are stored apart, so a reload never overwrites what an earlier page load sent. A new
attempt plays the visit's episodes that have no complete upload yet (``config["episodes"]``); the visit's
game is over once every episode has a complete upload in some attempt, or an upload reports an error.

Repeats. A page can play an episode that another attempt of the visit has already completed: its complete
upload was stashed on a page that lost the connection (``episode_uploader.js``), the page was reloaded, and the
new attempt was issued before the stash was re-sent, so it played that episode again. What was played is
stored, but marked: the first complete upload of an episode in a visit is *the* episode; a later complete
upload of it from another attempt is stored as ``status="complete"`` with ``meta["repeat_of_attempt"]`` = the
attempt that completed it first (``None`` when a restarted server cannot tell which one that was) and
``meta["repeat"] = True``. An analyst keeps the rows without ``repeat``; the visit's game-over counts every
episode once. The page re-sends its stash before the game starts and skips an episode whose stashed complete
upload was just stored (``scene_browser_game.js``), so a repeat is only left when the stash could not be
sent in time.

Seeds. ``GymScene(seed=s)``: the k-th visit of a scene in a participant's sequence (k = 0, 1, ...) plays
game seed ``s + k``, episode ``e`` seed ``scene.episode_seed(s + k, e)``; so every participant's first visit
plays the same seeds, each repetition different ones, reproducibly. Without ``seed`` the server draws them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from interactive_gym.browser.scene_config import browser_scene_config, choose_seeds, pyodide_settings
from interactive_gym.configurations.remote_config import ConfigError, RemoteConfig
from interactive_gym.policies import PolicyConfigError
from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.server.game_over import END_MESSAGES, game_over_record
from interactive_gym.server.pyodide_bundle import (
    BrowserBundle,
    BundleError,
    BundleRegistry,
    build_browser_bundle,
)
from interactive_gym.server.storage_records import BrowserVisitRow, EpisodeConflictError
from interactive_gym.server.upload_validation import (
    EpisodeUpload,
    UploadRejected,
    UploadRules,
    episode_write_kwargs,
    validate_episode_upload,
)

log = logging.getLogger("interactive_gym.browser")
BROWSER_MODES = ("browser", "p2p")
MAX_REPEAT_PROBES = 16  # earlier attempts tried when a restarted server must find a stored repeat's flag


class Visitor(Protocol):
    """What BrowserScenes reads of a participant (and nothing else)."""

    @property
    def participant_id(self) -> str: ...

    @property
    def index(self) -> int: ...

    @property
    def sequence(self) -> Sequence[Any]: ...

    @property
    def scene(self) -> Any: ...


def in_browser_scenes(scenes: Iterable[Any]) -> list[GymScene]:
    """The game scenes whose environment runs in the page."""
    return [s for s in scenes if isinstance(s, GymScene) and s.mode in BROWSER_MODES]


def visit_seeds(scene: GymScene, sequence: Sequence[Any], scene_index: int) -> list[int]:
    """The seeds of a new visit of ``scene`` at ``scene_index`` (see the module docstring for the rule)."""
    if scene.seed is None:
        return choose_seeds(scene.num_episodes)
    repetition = sum(1 for earlier in sequence[:scene_index] if earlier.scene_id == scene.scene_id)
    return choose_seeds(scene.num_episodes, game_seed=scene.seed + repetition, episode_seed=scene.episode_seed)


def remaining_episodes(num_episodes: int, complete: Iterable[int]) -> list[int]:
    """The episodes a new attempt plays: those without a complete upload, in order."""
    done = set(complete)
    return [e for e in range(num_episodes) if e not in done]


def visit_outcome(num_episodes: int, complete: Iterable[int], upload: EpisodeUpload) -> str | None:
    """``"error"`` when the upload reports an environment error, ``"complete"`` once every episode of the
    visit has a complete upload, else ``None`` (the game goes on)."""
    if upload.end_reason == "error":
        return "error"
    return "complete" if not remaining_episodes(num_episodes, complete) else None


def repeat_of(first_complete: int | None, complete: Iterable[int], episode: int, attempt: int | None,
              partial: bool) -> tuple[bool, int | None]:
    """Whether a stored upload is a repeat (see the module docstring), and of which attempt.

    Args:
        first_complete: The attempt known to hold the first complete upload of ``episode`` in the visit, or
            ``None`` when not known (no complete upload seen by this server process).
        complete: The visit's episodes with a complete upload (from the database).
        episode: The upload's episode.
        attempt: The upload's attempt.
        partial: Whether the upload is partial (a partial upload is never a repeat: it does not complete).

    Returns:
        ``(False, None)``: not a repeat; ``(True, n)``: a repeat of attempt ``n``; ``(True, None)``: complete
        elsewhere in the visit, in an attempt this process does not know (the caller checks that it is not
        a retry of this attempt's own stored upload).
    """
    if partial or episode not in set(complete):
        return False, None
    if first_complete is not None:
        return (first_complete != attempt, first_complete if first_complete != attempt else None)
    return True, None


def _ack(ok: bool, code: str | None = None, error: str | None = None, retryable: bool = False) -> dict[str, Any]:
    return {"ok": ok, "code": code, "error": error, "retryable": retryable}


@dataclasses.dataclass(frozen=True)
class UploadResult:
    """What one upload did.

    Attributes:
        ack: What the page gets: ``{"ok", "code", "error", "retryable"}``.
        game_over: A game-over record (``game_over.py``; ``"complete"`` or ``"error"``, the latter with the
            traceback under ``"error"``) when this upload ended the visit's game, else ``None``.
        upload: The validated upload, when it was valid.
    """

    ack: dict[str, Any]
    game_over: dict[str, str] | None = None
    upload: EpisodeUpload | None = None


class BrowserScenes:
    """Bundles and configs of every browser/p2p scene of an experiment, and its browser-mode visits.

    Args:
        config: The experiment.
        writer: The started ``DataWriter`` (visits, attempts and episodes are stored through it); needed by
            :meth:`config_for` and :meth:`receive_upload` only.
        clock: Server wall clock (tests pass a fake).

    Raises:
        ConfigError: at construction (start-up), if a scene's code cannot be shipped to the browser.
    """

    def __init__(self, config: RemoteConfig, writer: Any = None, *, clock: Callable[[], float] = time.time) -> None:
        assert config.stager is not None
        self.config = config
        self.writer = writer
        self.registry = BundleRegistry()
        self.rejections: Counter[str] = Counter()
        self._clock = clock
        self._visits: dict[tuple[str, int], BrowserVisitRow] = {}  # (participant, scene index) -> latest known
        self._templates: dict[str, dict[str, Any]] = {}  # scene id -> config without a visit's seeds
        # (participant, scene index) -> {episode: the attempt whose complete upload came first}, for repeats
        self._first_complete: dict[tuple[str, int], dict[int, int]] = {}
        problems = []
        for scene in in_browser_scenes(config.stager.all_scenes()):
            try:
                self.registry.add(build_browser_bundle(scene.scene_id, env_creator=scene.env_creator,
                                                       render_fn=scene.render_fn,
                                                       policy_mapping=scene.policy_mapping))
            except (BundleError, PolicyConfigError) as exc:
                problems.append(f"GymScene {scene.scene_id!r} (mode={scene.mode!r}): {exc}")
        if problems:
            raise ConfigError(problems)

    def bundle(self, scene: GymScene) -> BrowserBundle:
        bundle = self.registry.get(scene.scene_id)
        assert bundle is not None, f"no bundle for scene {scene.scene_id}"
        return bundle

    def pyodide_settings(self) -> dict[str, Any]:
        """The interpreter every page of this experiment starts (``scene_config.pyodide_settings``): the same
        for a scene's config and for the preload before it, so the preloaded Pyodide is the one the game uses."""
        return pyodide_settings({"index_url": self.config.pyodide_index_url,
                                 "packages": list(self.config.pyodide_packages)})

    def scene_config(self, scene: GymScene, seeds: list[int], mode: str = "browser") -> dict:
        """The config a page needs to play ``scene`` with the given episode seeds.

        The agents come in the environment's order (``scene.facts.agents``), and p2p configs carry the
        players' action spaces, so the page needs no Gymnasium to encode inputs.
        """
        bundle = self.bundle(scene)
        config = browser_scene_config(
            scene_id=scene.scene_id, bundle=bundle, manifest_url=self.registry.manifest_url(bundle),
            env_creator=scene.env_creator, render_fn=scene.render_fn,
            policy_mapping=scene.policy_mapping, agent_order=scene.facts.agents,
            controls=scene.key_mapping, fps=scene.fps, num_episodes=scene.num_episodes,
            max_steps=scene.max_steps, width=scene.width, height=scene.height, seeds=seeds,
            env_kwargs=scene.env_kwargs, background=scene.background,
            assets=scene.assets.manifest(scene.asset_url_prefix), pyodide=self.pyodide_settings(), mode=mode,
            action_spaces=scene.facts.action_spaces or None)
        if mode == "p2p":
            config["end_messages"] = dict(END_MESSAGES)  # the page's words for each way its game ends
        return config

    async def config_for(self, participant: Visitor, scene: GymScene) -> dict[str, Any]:
        """A new attempt of the participant's visit of ``scene`` (their current scene) and its config.

        The attempt (and, on the first one, the visit's seeds) is committed before this returns, so every
        config a page can hold is one the database knows. Each call is a new attempt: call it once per send.
        The config adds ``scene_index``, ``attempt`` and ``episodes`` (the episodes this attempt plays) to the
        browser scene config.
        """
        writer = self._require_writer()
        index = participant.index
        visit = await writer.issue_browser_attempt(
            participant.participant_id, index, scene.scene_id,
            visit_seeds(scene, participant.sequence, index), self._clock())
        visit = self._remember(visit)
        config = self.scene_config(scene, list(visit.seeds))
        config.update(scene_index=index, attempt=len(visit.attempts),
                      episodes=remaining_episodes(scene.num_episodes, visit.complete_episodes))
        return config

    def preload_for(self, participant: Visitor) -> dict | None:
        """What the page can start loading now for the participant's next in-browser scene, if any.

        Issues no attempt and chooses no seeds.
        """
        for scene in participant.sequence[participant.index + 1:]:
            if isinstance(scene, GymScene) and scene.mode in BROWSER_MODES:
                agents = self._template(scene)["agents"] if scene.mode == "browser" else {}
                return {"pyodide": self.pyodide_settings(), "agents": agents}
        return None

    async def receive_upload(self, participant: Visitor, payload: Any) -> UploadResult:
        """Validates and stores one uploaded episode (committed before the ack), and says whether the visit's
        game is over. Never raises for bad input or storage trouble: the ack says what happened."""
        writer = self._require_writer()
        received_at = self._clock()
        found = await self._visit_of(participant, payload)
        if isinstance(found, UploadRejected):
            return UploadResult(self._reject(found))
        scene, visit = found
        # Pure CPU work, ~0.2 s for a cap-sized upload: in a thread, so every game's loop keeps ticking.
        result = await asyncio.to_thread(
            validate_episode_upload, payload, participant_id=participant.participant_id,
            participant_scene_id=scene.scene_id, rules=self._rules(scene, visit), received_at=received_at)
        if isinstance(result, UploadRejected):
            return UploadResult(self._reject(result))
        kwargs = episode_write_kwargs(result, self._template(scene), received_at=received_at)
        key = (participant.participant_id, visit.scene_index)
        repeat, of_attempt = repeat_of(self._first_complete.get(key, {}).get(result.episode),
                                       visit.complete_episodes, result.episode, result.attempt, result.partial)
        try:
            if repeat:
                repeat = await self._write_repeat(writer, kwargs, visit, of_attempt)
            else:
                await writer.write_episode(**kwargs)
        except EpisodeConflictError as exc:
            await self._note(writer, participant, scene, "upload_conflict", {"error": str(exc)})
            return UploadResult(self._reject(UploadRejected("conflict", str(exc))), upload=result)
        except Exception:  # noqa: BLE001 - storage trouble is retried by the page, never fatal here
            log.exception("storing an uploaded episode of %s failed", participant.participant_id)
            return UploadResult(_ack(False, "storage", "could not store the episode; retrying", True))
        if result.time_flags and result.time_flags != ("no_clock",):
            await self._note(writer, participant, scene, "upload_time_flagged",
                             {"episode": result.episode, "attempt": result.attempt, "flags": list(result.time_flags)})
        if result.error:
            log.warning("participant %s: environment error in scene %s episode %d:\n%s",
                        participant.participant_id, scene.scene_id, result.episode, result.error)
        if repeat:
            await self._note(writer, participant, scene, "browser_episode_repeat",
                             {"episode": result.episode, "attempt": result.attempt, "repeat_of_attempt": of_attempt})
        elif not result.partial and result.attempt is not None:
            self._first_complete.setdefault(key, {}).setdefault(result.episode, result.attempt)
        if not result.partial:
            visit = self._remember(dataclasses.replace(
                visit, complete_episodes=visit.complete_episodes | {result.episode}))
        outcome = visit_outcome(scene.num_episodes, visit.complete_episodes, result)
        over = None
        if outcome is not None and visit.scene_index == participant.index:
            over = game_over_record(outcome)
            if outcome == "error":
                over = {**over, "error": result.error or ""}
        return UploadResult(_ack(True), over, result)

    def forget(self, participant_id: str) -> None:
        """Drops the participant's cached visits (they stay in the database)."""
        for key in [k for k in self._visits if k[0] == participant_id]:
            del self._visits[key]
        for key in [k for k in self._first_complete if k[0] == participant_id]:
            del self._first_complete[key]

    # -- internals -----------------------------------------------------------------------------------------
    async def _write_repeat(self, writer: Any, kwargs: dict[str, Any], visit: BrowserVisitRow,
                            of_attempt: int | None) -> bool:
        """Stores a repeat with its flag; False if it turned out to be no repeat.

        When the first attempt is unknown (a restarted server) the upload is stored flagged with
        ``repeat_of_attempt=None``, unless its key already holds data: a retry of this attempt's repeat stored
        before the restart (flagged with the attempt then known) or of its own unflagged first upload. Those
        are found by writing the candidates in turn; each matches (nothing changes) or conflicts (nothing is
        written), and if none matches the conflict stands.
        """
        candidates: list[int | None] = [of_attempt]
        if of_attempt is None:
            others = [a.attempt for a in visit.attempts if a.attempt != kwargs["attempt"]]
            candidates += others[-MAX_REPEAT_PROBES:]
        for candidate in candidates:
            flagged = {**kwargs, "meta": {**kwargs["meta"], "repeat": True, "repeat_of_attempt": candidate}}
            try:
                await writer.write_episode(**flagged)
                return True
            except EpisodeConflictError:
                if of_attempt is not None:
                    raise
        await writer.write_episode(**kwargs)  # raises the conflict if this is not the stored first upload
        return False

    def _require_writer(self) -> Any:
        if self.writer is None:
            raise RuntimeError("BrowserScenes was built without a writer; pass BrowserScenes(config, writer)")
        return self.writer

    def _template(self, scene: GymScene) -> dict[str, Any]:
        # The parts of a config every visit shares (agents, bundle, fps): built once per scene.
        if scene.scene_id not in self._templates:
            self._templates[scene.scene_id] = self.scene_config(scene, [0] * scene.num_episodes)
        return self._templates[scene.scene_id]

    def _remember(self, visit: BrowserVisitRow) -> BrowserVisitRow:
        """Keeps the most advanced state of a visit (concurrent calls may return older snapshots)."""
        key = (visit.participant_id, visit.scene_index)
        known = self._visits.get(key)
        if known is not None:
            attempts = visit.attempts if len(visit.attempts) >= len(known.attempts) else known.attempts
            visit = dataclasses.replace(visit, attempts=attempts,
                                        complete_episodes=visit.complete_episodes | known.complete_episodes)
        self._visits[key] = visit
        return visit

    async def _visit_of(self, participant: Visitor, payload: Any) -> tuple[GymScene, BrowserVisitRow] | UploadRejected:
        """The visit an upload claims, if the server issued it to this participant (cache, else database)."""
        index = payload.get("scene_index") if isinstance(payload, dict) else None
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index <= participant.index:
            return UploadRejected("wrong_visit", "scene_index must name a scene visit of yours (reload the page)")
        scene = participant.sequence[index]
        if not isinstance(scene, GymScene) or scene.mode != "browser" or scene.scene_id != payload.get("scene_id"):
            return UploadRejected("wrong_scene", "upload is for a scene the participant was not sent")
        key = (participant.participant_id, index)
        visit = self._visits.get(key)
        attempt = payload.get("attempt")
        if visit is None or (isinstance(attempt, int) and attempt > len(visit.attempts)):
            stored = await self._require_writer().browser_visit(participant.participant_id, index)
            visit = self._remember(stored) if stored is not None else None
        if visit is None:
            return UploadRejected("wrong_visit", "no config was sent for this scene visit (reload the page)")
        return scene, visit

    def _rules(self, scene: GymScene, visit: BrowserVisitRow) -> UploadRules:
        return UploadRules(
            scene_id=scene.scene_id, num_episodes=scene.num_episodes, max_steps=scene.max_steps,
            agent_ids=tuple(scene.facts.agents), seeds=visit.seeds,
            bundle_hash=self.bundle(scene).bundle_hash, scene_index=visit.scene_index,
            attempts_issued_at=tuple(a.issued_at for a in visit.attempts), require_clock=True)

    def _reject(self, rejected: UploadRejected) -> dict[str, Any]:
        self.rejections[rejected.code] += 1
        return _ack(False, rejected.code, rejected.message)

    async def _note(self, writer: Any, participant: Visitor, scene: GymScene, kind: str, data: dict[str, Any]) -> None:
        try:
            await writer.record_event(kind, data, participant_id=participant.participant_id, scene_id=scene.scene_id)
        except Exception:  # noqa: BLE001 - the episode itself is stored (or refused) already; log instead
            log.exception("could not record %s for %s", kind, participant.participant_id)
