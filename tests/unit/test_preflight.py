"""Broken experiments stop at start-up (exit code 2) with a message naming scene, function and fix.

CPython cases run here directly; the Pyodide cases (one Node process for all of them) and the demo
experiment run under the browser lock: ``flock /tmp/ig-browser.lock .venv/bin/python -m pytest
tests/unit/test_preflight.py -q``.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from interactive_gym.cli import main

ROOT = Path(__file__).resolve().parents[2]

ENV = '''
import random
from interactive_gym.envs.spaces import Discrete

class Env:
    possible_agents = ["agent_0", "agent_1"]

    def __init__(self):
        self.agents = list(self.possible_agents)
        self.t = 0

    def action_space(self, agent):
        return Discrete(3)

    def reset(self, seed=None, options=None):
        self.t = 0
        return {a: [0] for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        obs = {a: [self.t] for a in self.agents}
        zero = {a: 0.0 for a in self.agents}
        done = {a: False for a in self.agents}
        return obs, zero, done, dict(done), {a: {} for a in self.agents}

def make_env():
    return Env()

def render(env, surface):
    surface.rect(0, 0, 10, 10, color="#ff0000")

def partner(observation, agent_id):
    return 0
'''

EXPERIMENT = '''
import {module}
from interactive_gym import EndScene, GymScene, RemoteConfig, Stager, StartScene

{extra}

config = RemoteConfig().experiment("preflight_case", stager=Stager([
    StartScene("start", title="Hi"),
    {scenes}
    EndScene("end", title="Bye"),
]))
'''


def scene(scene_id: str, module: str, *, mode: str = "server", render: str | None = None,
          partner: str | None = None, background: str = "#000000", humans: int = 1) -> str:
    policy = "'human'" if humans == 2 else (partner or f"{module}.partner")
    return (f"GymScene({scene_id!r}, env_creator={module}.make_env, render_fn={render or module + '.render'}, "
            f"width=64, height=64, controls={{'ArrowUp': 1}}, policy_mapping={{'agent_0': 'human', "
            f"'agent_1': {policy}}}, mode={mode!r}, background={background!r}),")


def write_case(tmp_path: Path, module: str, env_extra: str, scenes: list[str], extra: str = "") -> Path:
    (tmp_path / f"{module}.py").write_text(ENV + textwrap.dedent(env_extra))
    path = tmp_path / "experiment.py"
    path.write_text(EXPERIMENT.format(module=module, extra=textwrap.dedent(extra), scenes="\n    ".join(scenes)))
    return path


def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["check", str(path)])
    captured = capsys.readouterr()
    return code, captured.err


PREFIX = "interactive-gym check: error: a game scene failed its first frames, so no participant could play it:\n"


# -- CPython (server mode) and start-up refusals: no Node needed ---------------------------------------------------
def test_a_render_function_that_raises_on_its_first_frame(tmp_path, capsys) -> None:
    path = write_case(tmp_path, "env_render_raises", '''
        def broken_render(env, surface):
            raise KeyError("score")
    ''', [scene("solo", "env_render_raises", render="env_render_raises.broken_render")])
    code, err = check(path, capsys)
    assert code == 2
    assert err.startswith(PREFIX + "GymScene 'solo' (mode='server', in CPython): render_fn raised KeyError during "
                                   "the first frame (env.reset and render_fn)\n")
    assert "    KeyError: 'score'\n" in err and 'raise KeyError("score")' in err
    assert err.endswith("  What to change: fix render_fn so that it runs without raising ('score')\n")


def test_a_bad_colour_inside_the_render_function(tmp_path, capsys) -> None:
    path = write_case(tmp_path, "env_bad_colour", '''
        def blue_render(env, surface):
            surface.rect(0, 0, 10, 10, color="dark blue")
    ''', [scene("solo", "env_bad_colour", render="env_bad_colour.blue_render")])
    code, err = check(path, capsys)
    assert code == 2
    assert err.startswith(PREFIX + "GymScene 'solo' (mode='server', in CPython): render_fn raised ColorError during "
                                   "the first frame (env.reset and render_fn)\n")
    assert "ColorError: rect color 'dark blue' is not a colour" in err
    assert err.endswith("  What to change: give render_fn colours as '#rrggbb' (or a colour name the renderer "
                        "knows)\n")


def test_a_bad_background_colour(tmp_path, capsys) -> None:
    path = write_case(tmp_path, "env_bad_background", "", [scene("solo", "env_bad_background",
                                                                  background="dark blue")])
    code, err = check(path, capsys)
    assert code == 2
    assert err.startswith("interactive-gym check: error: the experiment's configuration needs changes before it "
                          "can run:\n  - GymScene 'solo': background 'dark blue' is not a colour: use '#rgb'")


def test_a_policy_that_raises(tmp_path, capsys) -> None:
    path = write_case(tmp_path, "env_policy_raises", '''
        def bad_partner(observation, agent_id):
            return observation["missing"]
    ''', [scene("solo", "env_policy_raises", partner="env_policy_raises.bad_partner")])
    code, err = check(path, capsys)
    assert code == 2
    assert err.startswith(PREFIX + "GymScene 'solo' (mode='server', in CPython): policy of 'agent_1' raised "
                                   "TypeError during step 1 (policies, env.step and render_fn)\n")
    assert err.endswith("  What to change: fix policy of 'agent_1' so that it runs without raising (list indices "
                        "must be integers or slices, not str)\n")


def test_a_render_function_in_the_experiment_file_in_browser_mode_is_refused(tmp_path, capsys) -> None:
    path = write_case(tmp_path, "env_render_here", "", [scene("solo", "env_render_here", mode="browser",
                                                               render="render_here")],
                      extra="def render_here(env, surface):\n    pass\n")
    code, err = check(path, capsys)
    assert code == 2
    assert err == (
        "interactive-gym check: error: the experiment's configuration needs changes before it can run:\n"
        "  - GymScene 'solo' (mode='browser'): render_fn experiment_experiment:render_here is defined in "
        "experiment.py, which imports interactive_gym.EndScene, interactive_gym.GymScene, interactive_gym.RemoteConfig, "
        "interactive_gym.Stager, interactive_gym.StartScene; those are server-side and do not exist in the browser, "
        "so the page could not import experiment.py. Move render_fn to a module next to the experiment, e.g. "
        "my_env.py, that does not import them (browser-side modules such as interactive_gym.rendering and "
        "interactive_gym.envs.spaces are fine), and import it from experiment.py\n")


def test_a_p2p_action_space_that_cannot_travel_is_refused(tmp_path, capsys) -> None:
    path = write_case(tmp_path, "env_dict_space", '''
        import gymnasium

        class DictEnv(Env):
            def action_space(self, agent):
                return gymnasium.spaces.Dict({"move": gymnasium.spaces.Discrete(3)})

        def make_dict_env():
            return DictEnv()
    ''', [scene("pair", "env_dict_space", mode="p2p", humans=2).replace("env_dict_space.make_env",
                                                                          "env_dict_space.make_dict_env")])
    code, err = check(path, capsys)
    assert code == 2
    assert "  - GymScene 'pair', agent 'agent_0': mode='p2p' sends inputs peer to peer and cannot encode actions " \
           "of a Dict space as rollback inputs" in err


# -- Pyodide (Node): all browser cases in one experiment, so one Node process --------------------------------------
def _node() -> str:
    node = shutil.which("node")
    assert node is not None, "node is required (see scripts/bootstrap.sh)"
    return node


def test_browser_and_p2p_mistakes_are_caught_in_pyodide_in_one_node_process(tmp_path, capsys) -> None:
    _node()
    (tmp_path / "env_numpy.py").write_text("import numpy\n" + ENV)
    path = write_case(tmp_path, "env_pyodide", '''
        def browser_render(env, surface):
            surface.rect(0, 0, 10, 10, color="dark blue")

        class LazyGymEnv(Env):
            def action_space(self, agent):
                import gymnasium  # the server has it; the page does not, and no longer needs to ask
                return gymnasium.spaces.Discrete(3)

        def make_lazy_gym_env():
            return LazyGymEnv()
    ''', [
        scene("numpy_solo", "env_numpy", mode="browser"),
        scene("colour_solo", "env_pyodide", mode="browser", render="env_pyodide.browser_render"),
        scene("pair", "env_pyodide", mode="p2p", humans=2).replace("env_pyodide.make_env",
                                                                   "env_pyodide.make_lazy_gym_env"),
    ], extra="import env_numpy\n")
    code, err = check(path, capsys)
    assert code == 2
    assert err.startswith(PREFIX + "GymScene 'numpy_solo' (mode='browser', in Pyodide): RefError while "
                                   "importing env_numpy (for env_creator)\n")
    assert "No module named 'numpy'\n" in err
    version = __import__("json").loads((ROOT / "node_modules/pyodide/package.json").read_text())["version"]
    assert (f"  What to change: numpy is not in the self-hosted Pyodide: set RemoteConfig().pyodide(index_url="
            f"'https://cdn.jsdelivr.net/pyodide/v{version}/full/', packages=['numpy']) to a full Pyodide or "
            "remove numpy from the env\n") in err
    assert ("GymScene 'colour_solo' (mode='browser', in Pyodide): render_fn env_pyodide:browser_render raised "
            "ColorError during the first frame (env.reset and render_fn)\n") in err
    assert "'pair'" not in err  # the p2p page gets its action spaces from the server: no gymnasium in Pyodide


def test_the_demo_experiment_passes_preflight(capsys) -> None:
    _node()
    code = main(["check", str(ROOT / "examples/demo/experiment.py")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "preflight: orchard_with_ai (server, CPython) ok" in out
    assert "preflight: orchard_in_browser (browser, Pyodide) ok" in out
    assert out.endswith("examples/demo/experiment.py: ready to run\n")
