"""GymScene: a real-time game of a Gymnasium (or parallel multi-agent) environment inside an experiment."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interactive_gym.browser.host import _encoder
from interactive_gym.browser.p2p_agents import (
    DEFAULT_EPISODE_PAUSE_S,
    check_episode_pause,
    check_onnx_seat,
    model_block,
)
from interactive_gym.controls import ControlsError, KeyMapping
from interactive_gym.envs.agent_runtime import AgentPolicy, AgentPolicyError
from interactive_gym.envs.input_codecs import InputCodecError, describe_space
from interactive_gym.envs.multiagent import action_space_of, as_multiagent
from interactive_gym.envs.spaces import space_contains
from interactive_gym.netcode.input_delay import AUTO, DEFAULT_BOUNDS, DEFAULT_ROLLBACK_BUDGET, AutoInputDelay
from interactive_gym.netcode.settings import SettingsError
from interactive_gym.rendering import AssetError, AssetRegistry, ColorError, normalize_color
from interactive_gym.scenes.partner_drop import (
    PartnerDropError,
    TakeoverPolicy,
    check_on_partner_drop,
    check_takeover_policy,
)
from interactive_gym.scenes.scene import Scene, SceneConfigError
from interactive_gym.screening.rules import in_game_rules

MODES = ("server", "browser", "p2p")
# What happens to a participant whose game failed: "end" sends them to the end page with status errored (and
# the EndScene's error_completion_code); "continue" lets them go on to the next scene as if the game ended.
ON_ERROR = ("end", "continue")
# "Partner found, starting in 3…": the default for multi-human scenes, and the longest a researcher may ask for.
DEFAULT_COUNTDOWN_S = 3.0
MAX_COUNTDOWN_S = 30.0
HUMAN = "human"
RANDOM = "random"
# GymScene(rollback_smoothing_frames=...): the longest glide; rollback_smoothing.js MAX_SMOOTHING_FRAMES is the same.
MAX_ROLLBACK_SMOOTHING_FRAMES = 10


def check_rollback_smoothing(scene_id: str, mode: str, frames: Any) -> int:
    """``GymScene(rollback_smoothing_frames=...)`` checked: an integer from 0 to the maximum, above 0 only in p2p.

    Raises:
        SceneConfigError: saying what to change.
    """
    if isinstance(frames, bool) or not isinstance(frames, int) or not 0 <= frames <= MAX_ROLLBACK_SMOOTHING_FRAMES:
        raise SceneConfigError(
            f"GymScene {scene_id!r}: rollback_smoothing_frames must be an integer from 0 (off, the default) to "
            f"{MAX_ROLLBACK_SMOOTHING_FRAMES}: the frames over which an object a rollback moved glides to its "
            f"corrected place on screen (got {frames!r})")
    if frames > 0 and mode != "p2p":
        raise SceneConfigError(f"GymScene {scene_id!r}: rollback_smoothing_frames smooths rollback corrections, "
                               f"which only mode='p2p' has; remove it or use mode='p2p' (mode is {mode!r})")
    return frames


@dataclass(frozen=True)
class EnvFacts:
    """What start-up learned by building the environment once."""

    agents: tuple[str, ...]
    humans: tuple[str, ...]
    # p2p: each player's action space as a describe_space() dict, sent to the page (no Gymnasium there).
    action_spaces: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


class GymScene(Scene):
    """A game scene.

    Args:
        scene_id: Unique id of the scene.
        env_creator: Module-level function returning a fresh environment (called with ``env_kwargs``).
        render_fn: ``render_fn(env, surface)`` draws the state on an ``interactive_gym.rendering.Surface``.
        width: Surface width in pixels.
        height: Surface height in pixels.
        controls: ``{key or (key, key): action}`` for every human agent. Held keys keep acting every tick.
        default_action: Action of a human holding no mapped key (and of a disconnected one).
        policy_mapping: ``{agent_id: "human" | "random" | policy}``; a policy is ``f(observation, agent_id)
            -> action`` (module-level for browser/p2p modes) or an ``OnnxPolicy`` (browser/p2p modes; in p2p
            mode every peer computes the AI's actions in its simulation, see ``browser/p2p_agents.py``).
        env_kwargs: Keyword arguments for ``env_creator``.
        mode: ``"server"``, ``"browser"`` or ``"p2p"``.
        fps: Game ticks per second.
        num_episodes: Episodes per game.
        max_steps: Steps per episode before it is truncated.
        seed: Base seed; episode ``e`` of a game uses a seed drawn from it. ``None``: fresh random seeds
            (always recorded with the data).
        background: Canvas background colour.
        assets: Images the render function may draw by name: ``{name: path}`` or an ``AssetRegistry``
            (for sprite sheets and atlases). Served at ``/assets/<scene_id>/...``.
        waiting_room_timeout_s: How long a participant waits for partners before ``timeout_scene_id``.
        timeout_scene_id: Scene a timed-out participant goes to (default: the end scene, with a message).
        disconnect_grace_s: How long a game continues with the default action for a disconnected human
            before it ends for everyone.
        input_delay: p2p only: frames of local input delay, or ``"auto"`` (the default): before each episode the game picks
            the smallest delay that keeps rollbacks within ``rollback_budget_frames`` at the RTT the peers
            measured, within ``input_delay_bounds`` (``netcode/input_delay.py``); every player gets the same
            delay and it is stored with the episode.
        input_delay_bounds: With ``input_delay="auto"``: the smallest and largest delay it may pick.
        rollback_budget_frames: With ``input_delay="auto"``: frames of latency left to rollback before input
            delay is added.
        prediction_window: p2p only: most frames a peer may run ahead of confirmed inputs.
        episode_pause_s: p2p only: seconds between two episodes, with a "next round" notice on every page
            (0: none). The pause is frames every peer's simulation holds, so all pages pause together.
        rollback_smoothing_frames: p2p only, display only: when a rollback moves an object that has a render
            ``id`` (the partner's avatar was predicted wrong), it glides from where it was shown to its corrected
            place over this many frames instead of jumping there (the page's own avatar never does). 0 (the
            default) draws every frame exactly as simulated; the recorded data is the same either way.
        on_error: What follows a game that failed (an env, render, policy or load error): ``"end"`` (the
            participant goes to the end page with status ``errored``) or ``"continue"``.
        on_partner_drop: What follows a human gone past ``disconnect_grace_s``: ``"end"`` (the game ends for
            everyone) or ``"ai"`` (``partner_drop_policy`` plays their agent on; see ``scenes/partner_drop.py``).
        partner_drop_policy: With ``on_partner_drop="ai"``: a policy function, ``PythonPolicy`` or ``"random"``
            (server mode only); in p2p mode a module-level function of the env's (or render_fn's) module.
        matchmaker: how the waiting room forms groups (default first come, first served); e.g.
            ``latency_aware_matchmaker(max_rtt_ms=150)`` from ``interactive_gym.server.waiting_room``.
        exclusion: In-game screening rules for this scene (``HiddenTab``, ``Idle``, ``SustainedRtt`` from
            ``interactive_gym.screening``); ``None`` uses the study's ``RemoteConfig.screening(in_game=...)``,
            ``[]`` watches nothing here. An excluded player goes to the end page with status ``excluded``.
        keep_group_from: The id of an earlier multi-human game scene (server or p2p mode, same number of
            humans): this scene's waiting room re-forms the groups that played there, each member in the same
            role. A participant whose former partner never arrives times out after ``waiting_room_timeout_s``
            (at once if the partner has finished the study); nobody is matched with someone new. Participants
            who played in no group there are grouped first come, first served among themselves.
        start_countdown_s: Seconds of "Partner found, starting in 3…" before a multi-human game starts
            (0: none). Default: 3 for scenes with two or more humans, 0 otherwise.
        title: Heading above the game.
        body_html: Text shown above the game (instructions reminder).
    """

    kind = "gym"

    def __init__(
        self,
        scene_id: str,
        *,
        env_creator: Callable[..., Any],
        render_fn: Callable[[Any, Any], None],
        width: int,
        height: int,
        controls: Mapping[str | tuple[str, ...], Any],
        default_action: Any = 0,
        policy_mapping: Mapping[str, Any] | None = None,
        env_kwargs: Mapping[str, Any] | None = None,
        mode: str = "server",
        fps: int = 30,
        num_episodes: int = 1,
        max_steps: int = 1000,
        seed: int | None = None,
        background: str = "#000000",
        assets: Mapping[str, str | Path] | AssetRegistry | None = None,
        waiting_room_timeout_s: float = 120.0,
        timeout_scene_id: str | None = None,
        disconnect_grace_s: float = 10.0,
        input_delay: int | str = AUTO,
        prediction_window: int = 8,
        episode_pause_s: float = DEFAULT_EPISODE_PAUSE_S,
        rollback_smoothing_frames: int = 0,
        input_delay_bounds: tuple[int, int] = DEFAULT_BOUNDS,
        rollback_budget_frames: int = DEFAULT_ROLLBACK_BUDGET,
        matchmaker: Callable[..., list[str] | None] | None = None,
        on_error: str = "end",
        on_partner_drop: str = "end",
        partner_drop_policy: Any = None,
        exclusion: Sequence[Any] | None = None,
        keep_group_from: str | None = None,
        start_countdown_s: float | None = None,
        title: str = "",
        body_html: str = "",
    ) -> None:
        super().__init__(scene_id, title, body_html)
        if not callable(env_creator):
            raise SceneConfigError(f"GymScene {scene_id!r}: env_creator must be a function that returns an env")
        if not callable(render_fn):
            raise SceneConfigError(f"GymScene {scene_id!r}: render_fn must be a function (env, surface) -> None")
        if mode not in MODES:
            raise SceneConfigError(f"GymScene {scene_id!r}: mode must be one of {MODES}, got {mode!r}")
        if on_error not in ON_ERROR:
            raise SceneConfigError(f"GymScene {scene_id!r}: on_error must be one of {ON_ERROR}, got {on_error!r}")
        try:
            check_on_partner_drop(on_partner_drop, partner_drop_policy)
        except PartnerDropError as exc:
            raise SceneConfigError(f"GymScene {scene_id!r}: {exc}") from None
        for name, value, low, high in (
            ("fps", fps, 1, 60), ("num_episodes", num_episodes, 1, 1000), ("max_steps", max_steps, 1, 10**7),
            ("width", width, 16, 4096), ("height", height, 16, 4096),
            *((("input_delay", input_delay, 0, 30),) if input_delay != AUTO else ()),
            ("prediction_window", prediction_window, 0, 60),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise SceneConfigError(f"GymScene {scene_id!r}: {name} must be an integer from {low} to {high}"
                                       + (' or "auto"' if name == "input_delay" else ""))
        try:
            bounds = tuple(input_delay_bounds)
            if len(bounds) != 2:
                raise SettingsError(f"input_delay_bounds must be (min, max), got {input_delay_bounds!r}")
            auto_input_delay = AutoInputDelay(bounds[0], bounds[1], rollback_budget_frames)
        except (SettingsError, TypeError) as exc:
            raise SceneConfigError(f"GymScene {scene_id!r}: {exc}") from None
        timeouts: tuple[tuple[str, Any, bool], ...] = (("waiting_room_timeout_s", waiting_room_timeout_s, False),
                                                       ("disconnect_grace_s", disconnect_grace_s, True))
        for name, value, allow_zero in timeouts:
            if (isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value)
                    or value < 0 or (value == 0 and not allow_zero)):
                raise SceneConfigError(f"GymScene {scene_id!r}: timeouts must be positive numbers ({name}={value!r})")
        if keep_group_from is not None and (not isinstance(keep_group_from, str) or keep_group_from == scene_id):
            raise SceneConfigError(f"GymScene {scene_id!r}: keep_group_from must name another, earlier game scene")
        if keep_group_from is not None and matchmaker is not None:
            raise SceneConfigError(f"GymScene {scene_id!r}: keep_group_from re-forms earlier groups, so it cannot "
                                   "have a matchmaker too; remove one of them")
        if start_countdown_s is not None and (
                isinstance(start_countdown_s, bool) or not isinstance(start_countdown_s, int | float)
                or math.isnan(start_countdown_s) or not 0 <= start_countdown_s <= MAX_COUNTDOWN_S):
            raise SceneConfigError(f"GymScene {scene_id!r}: start_countdown_s must be a number of seconds from 0 to "
                                   f"{MAX_COUNTDOWN_S:g} (got {start_countdown_s!r})")
        self.rollback_smoothing_frames = check_rollback_smoothing(scene_id, mode, rollback_smoothing_frames)
        try:
            self.episode_pause_s = check_episode_pause(episode_pause_s)
        except ValueError as exc:
            raise SceneConfigError(f"GymScene {scene_id!r}: {exc}") from None
        self.keep_group_from = keep_group_from
        self.start_countdown_s = start_countdown_s
        try:
            self.key_mapping = KeyMapping(controls, default_action)
        except ControlsError as exc:
            raise SceneConfigError(f"GymScene {scene_id!r}: {exc}") from None
        self.env_creator = env_creator
        self.render_fn = render_fn
        self.env_kwargs = dict(env_kwargs or {})
        self.policy_mapping = dict(policy_mapping or {})
        self.mode = mode
        self.fps = fps
        self.num_episodes = num_episodes
        self.max_steps = max_steps
        self.seed = seed
        self.width = width
        self.height = height
        self.background = background
        self.assets = self._registry(assets)
        self.waiting_room_timeout_s = float(waiting_room_timeout_s)
        self.timeout_scene_id = timeout_scene_id
        self.disconnect_grace_s = float(disconnect_grace_s)
        self.input_delay = input_delay
        self.auto_input_delay = auto_input_delay if input_delay == AUTO else None
        self.prediction_window = prediction_window
        self.matchmaker = matchmaker
        self.on_error = on_error
        self.on_partner_drop = on_partner_drop
        self.partner_drop_policy = partner_drop_policy
        # Checked here, so a wrong rule stops the experiment file with the scene named (screening/rules.py).
        self.exclusion = None if exclusion is None else in_game_rules(exclusion, f"GymScene {scene_id!r}: exclusion")
        self.takeover: TakeoverPolicy | None = None  # the checked partner_drop_policy (after check())
        # p2p: each ONNX agent's model for the pages ({agent: {"model": base64}}, after check()).
        self.p2p_ai_models: dict[str, dict[str, str]] = {}
        self._facts: EnvFacts | None = None

    # -- start-up validation ------------------------------------------------------------------------------
    def make_env(self) -> Any:
        """A fresh environment in the parallel multi-agent form."""
        return as_multiagent(self.env_creator(**self.env_kwargs))

    def check(self) -> EnvFacts:
        """Builds the env once and checks agents, policies and key mapping against it.

        Raises:
            SceneConfigError: naming what to change.
        """
        where = f"GymScene {self.scene_id!r}"
        try:
            normalize_color(self.background, "background")
        except ColorError as exc:
            raise SceneConfigError(f"{where}: {exc}") from None
        try:
            env = self.make_env()
        except Exception as exc:  # noqa: BLE001 - any failure here is the researcher's to see, with context
            raise SceneConfigError(f"{where}: env_creator(**env_kwargs) failed: {type(exc).__name__}: {exc}") from exc
        agents = tuple(env.possible_agents)
        mapping = self.policy_mapping or {agents[0]: HUMAN}
        unknown = sorted(set(mapping) - set(agents))
        if unknown:
            raise SceneConfigError(f"{where}: policy_mapping names unknown agent(s) {unknown}; the env has {list(agents)}")
        missing = [a for a in agents if a not in mapping]
        if missing:
            raise SceneConfigError(f"{where}: policy_mapping gives no policy for {missing}: map each agent to "
                                   "'human', 'random' or a policy")
        humans = tuple(a for a in agents if mapping[a] == HUMAN)
        if not humans:
            raise SceneConfigError(f"{where}: no agent is 'human'; an experiment game needs at least one human")
        if self.mode == "p2p" and len(humans) < 2:
            raise SceneConfigError(f"{where}: mode='p2p' needs at least two 'human' agents")
        for agent, policy in mapping.items():
            if hasattr(policy, "model_path") and self.mode == "server":
                raise SceneConfigError(f"{where}: OnnxPolicy for {agent!r} runs only in mode='browser' or 'p2p' (in "
                                       "the page); use a Python policy function in mode='server'")
            if policy == RANDOM and self.mode != "server":
                raise SceneConfigError(f"{where}: 'random' for {agent!r} is server-mode only; in the browser use a "
                                       "policy function with a seeded random.Random")
            if policy in (HUMAN, RANDOM) or callable(policy) or hasattr(policy, "model_path") or hasattr(policy, "fn"):
                continue
            raise SceneConfigError(f"{where}: policy for {agent!r} must be 'human', 'random' or a policy, got {policy!r}")
        for agent, policy in mapping.items():
            self._check_runtime_policy(where, env, agent, policy)
        models = self._check_p2p_onnx(where, env, mapping) if self.mode == "p2p" else {}
        spaces: dict[str, Mapping[str, Any]] = {}
        if self.mode == "p2p":
            for agent in humans:
                try:
                    spaces[agent] = describe_space(action_space_of(env, agent))
                except InputCodecError as exc:
                    raise SceneConfigError(f"{where}, agent {agent!r}: mode='p2p' sends inputs peer to peer and "
                                           f"{exc}") from None
        for agent in humans:
            space = action_space_of(env, agent)
            try:
                self.key_mapping.validate_actions(lambda a, s=space: space_contains(s, a), f"{where}, agent {agent!r}")
            except ControlsError as exc:
                raise SceneConfigError(str(exc)) from None
        if self.on_partner_drop == "ai":
            try:
                self.takeover = check_takeover_policy(
                    self.partner_drop_policy, mode=self.mode, env=env, humans=humans,
                    shipped_with=(self.env_creator, self.render_fn))
            except PartnerDropError as exc:
                raise SceneConfigError(f"{where}: {exc}") from None
        self.policy_mapping = dict(mapping)
        self.p2p_ai_models = models
        self._facts = EnvFacts(agents=agents, humans=humans, action_spaces=spaces)
        return self._facts

    @staticmethod
    def _check_runtime_policy(where: str, env: Any, agent: str, policy: Any) -> None:
        """Builds ``agent``'s policy as every mode's runtime will (``envs/agent_runtime.py``), so a policy the
        game could not call fails here, at start-up, in server mode too (browser modes also check it when the
        bundle is built)."""
        if policy == HUMAN or hasattr(policy, "model_path"):
            return  # humans have no policy; an ONNX policy acts in the page's JavaScript
        try:
            if policy == RANDOM:
                AgentPolicy.random(action_space_of(env, agent))
            else:
                AgentPolicy.function(getattr(policy, "fn", policy), getattr(policy, "frame_skip", 1))
        except AgentPolicyError as exc:  # its message says how a policy is called; 'random' needs one more word
            fix = "; map the agent to a policy function instead" if policy == RANDOM else ""
            raise SceneConfigError(f"{where}: policy for {agent!r}: {exc}{fix}") from None

    @staticmethod
    def _check_p2p_onnx(where: str, env: Any, mapping: Mapping[str, Any]) -> dict[str, dict[str, str]]:
        """Checks every ONNX agent of a p2p scene as its pages will run it (``browser/p2p_agents.py``): the model
        is readable by the in-simulation evaluator and within its budget, its input size matches what
        ``obs_to_input`` returns on the first observation, its outputs the agent's actions. Returns the models
        for the pages."""
        onnx = {agent: policy for agent, policy in mapping.items() if hasattr(policy, "model_path")}
        if not onnx:
            return {}
        try:
            observations, _ = env.reset(seed=0)
        except Exception as exc:  # noqa: BLE001 - the researcher's env; shown with context
            raise SceneConfigError(f"{where}: env.reset() failed while checking the ONNX agents: "
                                   f"{type(exc).__name__}: {exc}") from exc
        models = {}
        for agent, policy in onnx.items():
            try:
                data = Path(policy.model_path).read_bytes()
            except OSError as exc:
                raise SceneConfigError(f"{where}: OnnxPolicy for {agent!r}: cannot read the model file "
                                       f"{policy.model_path}: {exc.strerror or exc}; check model_path") from None
            space = action_space_of(env, agent)
            actions = int(space.n) if hasattr(space, "n") else None
            try:
                check_onnx_seat(data, _encoder(agent, policy.obs_to_input), agent, observations.get(agent), actions)
            except ValueError as exc:
                raise SceneConfigError(f"{where}: OnnxPolicy for {agent!r} in mode='p2p': {exc}") from None
            models[agent] = model_block(data)
        return models

    def _registry(self, assets: Mapping[str, str | Path] | AssetRegistry | None) -> AssetRegistry:
        if isinstance(assets, AssetRegistry):
            return assets
        registry = AssetRegistry()
        for name, path in (assets or {}).items():
            try:
                registry.add_image(name, Path(path))
            except AssetError as exc:
                raise SceneConfigError(f"GymScene {self.scene_id!r}: asset {name!r}: {exc}") from None
        return registry

    @property
    def asset_url_prefix(self) -> str:
        return f"/assets/{self.scene_id}"

    @property
    def facts(self) -> EnvFacts:
        """Agents and humans (after :meth:`check`)."""
        if self._facts is None:
            return self.check()
        return self._facts

    @property
    def countdown_s(self) -> float:
        """Seconds between a group forming and its game starting (``start_countdown_s`` or its default)."""
        if self.start_countdown_s is not None:
            return float(self.start_countdown_s)
        return DEFAULT_COUNTDOWN_S if len(self.facts.humans) > 1 else 0.0

    def episode_seed(self, game_seed: int, episode: int) -> int:
        """Seed of ``episode`` in a game whose seed is ``game_seed`` (31-bit, fits every runtime)."""
        return (game_seed * 1_000_003 + episode * 7919) % (2**31 - 1)

    def to_client(self) -> dict[str, Any]:
        data = super().to_client()
        data.update(mode=self.mode, fps=self.fps, num_episodes=self.num_episodes, max_steps=self.max_steps,
                    canvas={"width": self.width, "height": self.height, "background": self.background},
                    keys=self.key_mapping.keys, humans=len(self.facts.humans),
                    assets=self.assets.manifest(self.asset_url_prefix))
        return data
