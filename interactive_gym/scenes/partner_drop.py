"""What a game scene does when a human partner is gone for good: end the game, or let an AI play on.

``GymScene(on_partner_drop="end")`` (the default) ends the game for everyone once a disconnected human has been
gone past ``disconnect_grace_s``. ``on_partner_drop="ai"`` replaces the dropped human with
``partner_drop_policy`` from then on:

* **server mode** - the server's agent runtime plays the agent (seeded like any AI agent: ``f"{seed}:{agent}"``);
  the policy may be a function, a ``PythonPolicy`` or ``"random"`` (discrete action spaces);
* **p2p mode** - the remaining peer's simulation plays it inside Pyodide once no other peer is left, so the
  policy must be a module-level Python function (or ``PythonPolicy``) of a module that ships to the browser
  (the module of ``env_creator`` or ``render_fn``, or their package). ``"random"`` and ONNX takeover policies are
  refused here: the p2p simulation runs Python policies only (ONNX runs in the page's JavaScript, outside the
  rollback state).

Every step played after a takeover records its controller ``"ai-takeover:<name>"`` for the agent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from interactive_gym.browser.refs import RefError, function_ref, module_name_of
from interactive_gym.envs.agent_runtime import AgentPolicy, AgentPolicyError
from interactive_gym.envs.multiagent import action_space_of

ON_PARTNER_DROP = ("end", "ai")
TAKEOVER_PREFIX = "ai-takeover:"
# The controller of a dropped player's agent while it plays the default input, before (or without) a takeover.
GAP_CONTROLLER = "gap:default-input"
RANDOM = "random"


class PartnerDropError(ValueError):
    """A partner-drop setting the scene cannot use; the message says what to change."""


@dataclass(frozen=True, slots=True)
class TakeoverPolicy:
    """The checked ``partner_drop_policy`` of a scene.

    Attributes:
        name: The policy's name in the data (function name, or ``"random"``).
        spec: What the researcher gave (``"random"``, a function or a ``PythonPolicy``).
        frame_skip: Frames each chosen action is held for.
        ref: ``"module:function"`` for the browser (p2p mode), else ``None``.
    """

    name: str
    spec: Any
    frame_skip: int
    ref: str | None = None

    @property
    def controller(self) -> str:
        """What the data says played an agent after the takeover: ``"ai-takeover:<name>"``."""
        return TAKEOVER_PREFIX + self.name

    def runtime_policy(self, env: Any, agent: str) -> AgentPolicy:
        """The agent runtime's policy for ``agent`` (``envs/agent_runtime.py``, the rules every AI agent obeys)."""
        if self.spec == RANDOM:
            return AgentPolicy.random(action_space_of(env, agent))
        return AgentPolicy.function(_fn_of(self.spec), self.frame_skip)

    def to_client(self) -> dict[str, Any]:
        """The p2p page's ``config["p2p"]["takeover"]``: what its simulation needs to build the policy."""
        return {"ref": self.ref, "frame_skip": self.frame_skip, "name": self.name, "controller": self.controller}


def _fn_of(spec: Any) -> Callable[..., Any]:
    return getattr(spec, "fn", spec)  # a PythonPolicy descriptor carries its function; a bare function is itself


def check_on_partner_drop(on_partner_drop: Any, policy: Any) -> None:
    """The constructor-time check (no environment needed).

    Raises:
        PartnerDropError: for an unknown setting, ``"ai"`` without a policy, or a policy with ``"end"``.
    """
    if on_partner_drop not in ON_PARTNER_DROP:
        raise PartnerDropError(f"on_partner_drop must be one of {ON_PARTNER_DROP}, got {on_partner_drop!r}")
    if on_partner_drop == "ai" and policy is None:
        raise PartnerDropError("on_partner_drop='ai' needs partner_drop_policy: a policy function, "
                               "PythonPolicy(...) or 'random' (server mode)")
    if on_partner_drop == "end" and policy is not None:
        raise PartnerDropError("partner_drop_policy is only used with on_partner_drop='ai'; set "
                               "on_partner_drop='ai' or remove partner_drop_policy")


def check_takeover_policy(policy: Any, *, mode: str, env: Any, humans: Sequence[str],
                          shipped_with: Sequence[Callable[..., Any]]) -> TakeoverPolicy:
    """Builds the takeover policy for every human agent as the runtime will, so a policy the game could not
    call fails at start-up.

    Args:
        policy: ``partner_drop_policy``.
        mode: The scene's mode.
        env: The scene's environment (parallel form), for action spaces.
        humans: The human agents (any of them may be taken over).
        shipped_with: p2p: functions whose modules ship to the browser (``env_creator`` and ``render_fn``).

    Raises:
        PartnerDropError: naming what to change.
    """
    if mode == "browser":
        raise PartnerDropError("on_partner_drop='ai' needs a partner: browser mode has one human; use it in "
                               "mode='server' or mode='p2p'")
    if hasattr(policy, "model_path"):
        raise PartnerDropError("an OnnxPolicy cannot take over a dropped partner (in server mode the server "
                               "runs no ONNX; in p2p mode the rollback simulation runs Python policies only); "
                               "use a Python policy function")
    if policy == RANDOM:
        if mode != "server":
            raise PartnerDropError("partner_drop_policy='random' is server-mode only; in p2p mode use a policy "
                                   "function with an rng parameter (seeded per agent and episode)")
        name = RANDOM
    elif callable(policy) or hasattr(policy, "fn"):
        name = getattr(_fn_of(policy), "__name__", type(policy).__name__)
    else:
        raise PartnerDropError(f"partner_drop_policy must be a policy function, PythonPolicy(...) or 'random', "
                               f"got {policy!r}")
    frame_skip = getattr(policy, "frame_skip", 1)
    takeover = TakeoverPolicy(name, policy, frame_skip, _browser_ref(policy, shipped_with) if mode == "p2p"
                              else None)
    for agent in humans:
        try:
            takeover.runtime_policy(env, agent)
        except AgentPolicyError as exc:
            raise PartnerDropError(f"partner_drop_policy for {agent!r}: {exc}") from None
    return takeover


def _browser_ref(policy: Any, shipped_with: Sequence[Callable[..., Any]]) -> str:
    fn = _fn_of(policy)
    try:
        ref = function_ref(fn, "partner_drop_policy")
        module = module_name_of(fn)
        shipped_modules = [module_name_of(f) for f in shipped_with]
    except RefError as exc:
        raise PartnerDropError(str(exc)) from None
    shipped_roots = {m.split(".")[0] for m in shipped_modules if "." in m}
    if module not in shipped_modules and module.split(".")[0] not in shipped_roots:
        raise PartnerDropError(
            f"partner_drop_policy {ref} must be defined in a module that ships to the browser: the module of "
            f"env_creator or render_fn ({', '.join(dict.fromkeys(shipped_modules))}) or their package; move it there")
    return ref
