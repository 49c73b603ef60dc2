"""The configuration a browser-mode scene sends to the page (server side; never imported in Pyodide).

The scene client hands this dict, unchanged, to ``BrowserGame`` (``browser_game.js``) and Python's
``BrowserGameHost.from_config``. Shape (all keys but ``action_spaces`` always present)::

    {
      "scene_id": "solo",
      "mode": "browser",
      "fps": 30,
      "num_episodes": 2,
      "max_steps": 600,
      "canvas": {"width": 432, "height": 376, "background": "#000000"},
      "assets": {...},                                   # passed to the Renderer unchanged
      "pyodide": {"index_url": "/vendor/pyodide/", "packages": [], "env": {"PYTHONHASHSEED": "0"}},
      "bundle": {"manifest_url": "/bundle/solo/<hash>/manifest.json", "hash": "<hash>",
                 "factory": "gatherers:make_env", "render": "gatherers:render", "env_kwargs": {...}},
      "controls": {"bindings": [[["arrowup"], 1], ...], "default_action": 0, "keys": [...]} | null,
      "agents": {"agent_0": {"kind": "human"},
                 "agent_1": {"kind": "onnx", "url": "/bundle/solo/<hash>/files/12",
                             "obs_to_input": "gatherers:obs_vector", "sample": true,
                             "temperature": 1.0, "frame_skip": 2}
                 | {"kind": "python", "ref": "gatherers:greedy_policy", "frame_skip": 1}},
      "seeds": [seed_of_episode_0, seed_of_episode_1],
      "max_upload_bytes": 4194304,                       # the server's upload cap (upload_validation.py)
      "action_spaces": {agent: describe_space(...)}      # p2p only: the players' action spaces
    }

``controls`` is ``KeyMapping.to_config()``. The server chooses the seeds (:func:`choose_seeds`) and
records them; uploads must carry the seed of their episode.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from interactive_gym.browser.refs import RefError, function_ref
from interactive_gym.envs.determinism import PYTHON_HASH_SEED
from interactive_gym.policies import HUMAN, OnnxPolicy, PythonPolicy, normalise_policy
from interactive_gym.server.pyodide_bundle import BrowserBundle
from interactive_gym.server.upload_validation import MAX_UPLOAD_BYTES

DEFAULT_PYODIDE = {"index_url": "/vendor/pyodide/", "packages": []}
MAX_SEED = 2**31 - 1


class BrowserSceneError(ValueError):
    """A browser-mode scene setting that cannot work; the message says what to change."""


def choose_seeds(
    num_episodes: int,
    draw: Callable[[int], int] = secrets.randbelow,
    *,
    game_seed: int | None = None,
    episode_seed: Callable[[int, int], int] | None = None,
) -> list[int]:
    """One seed per episode in ``[0, 2**31 - 1)``.

    With ``game_seed`` (a scene's ``seed=``) the seeds are reproducible: episode ``e`` gets
    ``episode_seed(game_seed, e)`` (the scene's rule, ``GymScene.episode_seed``). Without it the server draws
    them (``draw(n)`` gives ``0 <= x < n``).
    """
    if game_seed is not None:
        if episode_seed is None:
            raise ValueError("choose_seeds(game_seed=...) needs the scene's episode_seed rule")
        return [int(episode_seed(game_seed, e)) % MAX_SEED for e in range(num_episodes)]
    return [int(draw(MAX_SEED)) for _ in range(num_episodes)]


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BrowserSceneError(f"{name} must be a positive integer, got {value!r}")
    return value


def _ref(fn: Any, what: str) -> str:
    try:
        return function_ref(fn, what)
    except RefError as exc:
        raise BrowserSceneError(str(exc)) from exc


def pyodide_settings(pyodide: Any = None) -> dict[str, Any]:
    """The ``"pyodide"`` entry of every config that starts an interpreter (scene configs and preloads).

    One rule, so a page that preloads Pyodide during the instructions starts the very interpreter its game
    uses: same index URL, same packages, same environment (``PYTHONHASHSEED``: every peer's interpreter gets
    the same str hash seed, so set/dict-of-str orders agree between browsers). Idempotent: the result passed
    back in gives itself.

    Args:
        pyodide: ``{"index_url", "packages"}`` (or an object with those attributes), ``None`` for the
            self-hosted default.

    Raises:
        BrowserSceneError: for an index URL not ending in ``/`` or packages that are not names.
    """
    env = {"PYTHONHASHSEED": PYTHON_HASH_SEED}
    if pyodide is None:
        return dict(DEFAULT_PYODIDE, packages=[], env=env)
    if not isinstance(pyodide, Mapping):
        pyodide = {"index_url": getattr(pyodide, "index_url", None), "packages": getattr(pyodide, "packages", None)}
    index_url = pyodide.get("index_url") or DEFAULT_PYODIDE["index_url"]
    packages = list(pyodide.get("packages") or [])
    if not isinstance(index_url, str) or not index_url.endswith("/"):
        raise BrowserSceneError(f"pyodide index_url must be a URL ending in '/', got {index_url!r}")
    if not all(isinstance(p, str) and p for p in packages):
        raise BrowserSceneError(f"pyodide packages must be a list of package names, got {packages!r}")
    return {"index_url": index_url, "packages": packages, "env": env}


def _agent_order(policy_mapping: Mapping[str, Any], agent_order: Sequence[str]) -> list[str]:
    """The agents in the environment's order, checked against ``policy_mapping``."""
    if isinstance(agent_order, str):
        raise BrowserSceneError(f"agent_order must be a sequence of agent ids, got the string {agent_order!r}")
    order = list(agent_order)
    if len(set(order)) != len(order) or set(order) != set(policy_mapping):
        raise BrowserSceneError(f"policy_mapping names agents {sorted(policy_mapping)} but the environment has "
                                f"{order}: map each of the environment's agents exactly once")
    return order


def browser_scene_config(
    *,
    scene_id: str,
    bundle: BrowserBundle,
    manifest_url: str,
    env_creator: Callable[..., Any],
    render_fn: Callable[..., Any],
    policy_mapping: Mapping[str, Any],
    agent_order: Sequence[str],
    controls: Any,
    fps: int,
    num_episodes: int,
    max_steps: int,
    width: int,
    height: int,
    seeds: Sequence[int],
    env_kwargs: Mapping[str, Any] | None = None,
    background: str = "#000000",
    assets: Mapping[str, Any] | None = None,
    pyodide: Any = None,
    mode: str = "browser",
    action_spaces: Mapping[str, Mapping[str, Any]] | None = None,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
) -> dict[str, Any]:
    """Builds the JSON-ready scene config for the page (see the module docstring for the shape).

    Args:
        scene_id: The scene's id.
        bundle: The scene's :class:`BrowserBundle` (its ONNX models get URLs next to the manifest).
        manifest_url: Where the page fetches the bundle manifest (``BundleRegistry.manifest_url``).
        env_creator, render_fn: Module-level functions (shipped in the bundle).
        policy_mapping: ``{agent_id: "human" | OnnxPolicy | PythonPolicy | function}``.
        agent_order: The environment's agents in its own order (``GymScene.facts.agents``). It is the one
            source of the agents' order: ``"agents"`` lists them in it and p2p players are numbered in it, as the
            server numbers them (``GymScene.facts.humans``), whatever order ``policy_mapping`` was written in.
        controls: A ``KeyMapping`` (anything with ``to_config()``) or ``None`` when no agent is human.
        fps, num_episodes, max_steps, width, height: Positive integers.
        seeds: One server-chosen seed per episode.
        env_kwargs: JSON-serialisable keyword arguments for ``env_creator``.
        background: Canvas background colour.
        assets: Renderer assets, passed through.
        pyodide: ``{"index_url", "packages"}`` (or an object with those attributes); default self-hosted
            (:func:`pyodide_settings`).
        mode: ``"browser"`` (one human per page) or ``"p2p"`` (every human is a player; human agents get
            ``"player": i`` in ``agent_order``).
        action_spaces: p2p: ``{agent: describe_space(space)}`` of the players (``GymScene.facts.action_spaces``),
            sent as ``"action_spaces"`` so the page builds its input codecs without Gymnasium.
        max_upload_bytes: The largest upload the server accepts (default: the one cap,
            ``upload_validation.MAX_UPLOAD_BYTES``), sent as ``"max_upload_bytes"`` so the page's uploader
            refuses before sending what the server would refuse.

    Raises:
        BrowserSceneError: naming the setting to change.
    """
    for name, value in (("fps", fps), ("num_episodes", num_episodes), ("max_steps", max_steps),
                        ("width", width), ("height", height)):
        _positive_int(name, value)
    if len(seeds) != num_episodes or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise BrowserSceneError(f"seeds must be {num_episodes} integers (one per episode), got {list(seeds)!r}")
    kwargs = dict(env_kwargs or {})
    try:
        json.dumps(kwargs)
    except (TypeError, ValueError) as exc:
        raise BrowserSceneError(f"env_kwargs of a browser-mode scene must be JSON values: {exc}") from exc
    if bundle.scene_id != scene_id:
        raise BrowserSceneError(f"bundle belongs to scene {bundle.scene_id!r}, not {scene_id!r}")
    base_url = manifest_url.rsplit("/", 1)[0]
    agents: dict[str, dict[str, Any]] = {}
    for agent in _agent_order(policy_mapping, agent_order):
        policy = normalise_policy(agent, policy_mapping[agent])
        if policy == HUMAN:
            agents[agent] = {"kind": "human"}
        elif isinstance(policy, OnnxPolicy):
            try:
                index = bundle.index_of(f"models/{agent}.onnx")
            except KeyError as exc:
                raise BrowserSceneError(f"the bundle has no ONNX model for agent {agent!r}; rebuild it") from exc
            agents[agent] = {
                "kind": "onnx",
                "url": f"{base_url}/files/{index}",
                "obs_to_input": policy.obs_to_input_ref,
                "sample": policy.sample,
                "temperature": policy.temperature,
                "frame_skip": policy.frame_skip,
            }
        elif isinstance(policy, PythonPolicy):
            agents[agent] = {"kind": "python", "ref": policy.ref, "frame_skip": policy.frame_skip}
    humans = [a for a, s in agents.items() if s["kind"] == "human"]
    if mode == "p2p":
        for player, agent in enumerate(humans):
            agents[agent]["player"] = player
    elif len(humans) > 1:
        raise BrowserSceneError(f"browser mode has one human per page; {humans} are all 'human' (use p2p mode)")
    if humans and controls is None:
        raise BrowserSceneError(f"agent {humans[0]!r} is human but the scene has no controls")
    return {
        "scene_id": scene_id,
        "mode": mode,
        "fps": fps,
        "num_episodes": num_episodes,
        "max_steps": max_steps,
        "canvas": {"width": width, "height": height, "background": background},
        "assets": dict(assets or {}),
        "pyodide": pyodide_settings(pyodide),
        "bundle": {
            "manifest_url": manifest_url,
            "hash": bundle.bundle_hash,
            "factory": _ref(env_creator, "env_creator"),
            "render": _ref(render_fn, "render_fn"),
            "env_kwargs": kwargs,
        },
        "controls": controls.to_config() if controls is not None else None,
        "agents": agents,
        "seeds": [int(s) for s in seeds],
        "max_upload_bytes": _positive_int("max_upload_bytes", max_upload_bytes),
        **action_spaces_config(action_spaces),
    }


def action_spaces_config(action_spaces: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Any]:
    """The ``"action_spaces"`` entry of a scene config (nothing when the server gives none)."""
    if not action_spaces:
        return {}
    return {"action_spaces": {agent: dict(description) for agent, description in action_spaces.items()}}
