"""The browser bundle: which files ship, their hashes, the refusals, and the routes that serve them."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import sys
import textwrap
from pathlib import Path

import pytest
from starlette.applications import Starlette

from interactive_gym.policies import OnnxPolicy, PolicyConfigError, PythonPolicy
from interactive_gym.server.pyodide_bundle import (
    CORE_INIT,
    KIND_MODEL,
    KIND_SOURCE,
    BundleError,
    BundleFile,
    BundleRegistry,
    build_browser_bundle,
    compute_bundle_hash,
    core_files,
)

ENV_SOURCE = textwrap.dedent('''
    def make_env(**kw):
        return None

    def render(env, surface):
        pass

    def policy(obs, agent_id):
        return 0

    def encode(obs):
        return [0.0]
''')


class Reply:
    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code, self.headers, self.content = status_code, headers, content

    def json(self):
        import json

        return json.loads(self.content)


class AsgiClient:
    """Minimal GET-only ASGI client (starlette's TestClient needs an extra package)."""

    def __init__(self, app) -> None:
        self.app = app

    def get(self, path: str) -> Reply:
        return asyncio.run(self._get(path))

    async def _get(self, path: str) -> Reply:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
        sent: list[dict] = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        await self.app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
        return Reply(start["status"], headers, body)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture
def make_module(tmp_path, monkeypatch):
    """Creates and imports a throwaway module or package under tmp_path; removes it from sys.modules after."""
    monkeypatch.syspath_prepend(str(tmp_path))
    created: list[str] = []

    def make(files: dict[str, str | bytes], import_name: str):
        for rel, text in files.items():
            write(tmp_path / rel, text)
        importlib.invalidate_caches()
        module = importlib.import_module(import_name)
        created.append(import_name.split(".")[0])
        return module

    yield make
    for top in created:
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            del sys.modules[name]


def paths(bundle):
    return [f.path for f in bundle.files]


def test_a_top_level_module_ships_as_one_file_plus_the_core(make_module) -> None:
    mod = make_module({"bund_single.py": ENV_SOURCE, "bund_unrelated.py": "x = 1\n"}, "bund_single")
    bundle = build_browser_bundle("solo", env_creator=mod.make_env, render_fn=mod.render,
                                  policy_mapping={"a": "human", "b": mod.policy})
    names = paths(bundle)
    assert "bund_single.py" in names and "bund_unrelated.py" not in names
    assert "interactive_gym/controls.py" in names
    assert "interactive_gym/browser/host.py" in names
    assert "interactive_gym/envs/multiagent.py" in names
    assert "interactive_gym/rendering/surface.py" in names
    assert not any("__pycache__" in p or p.endswith(".pyc") for p in names)
    assert not any(p.startswith("interactive_gym/server") for p in names), "server code never ships"
    init = bundle.files[bundle.index_of("interactive_gym/__init__.py")]
    assert init.data == CORE_INIT.encode(), "the real package __init__ is replaced by a stand-in"
    single = bundle.files[bundle.index_of("bund_single.py")]
    assert single.sha256 == hashlib.sha256(ENV_SOURCE.encode()).hexdigest() and single.size == len(ENV_SOURCE)


def test_a_module_in_a_package_ships_the_whole_package_with_small_data_files(make_module) -> None:
    files = {
        "bund_pkg/__init__.py": "",
        "bund_pkg/envs/__init__.py": "",
        "bund_pkg/envs/game.py": ENV_SOURCE,
        "bund_pkg/helpers.py": "HELP = 1\n",
        "bund_pkg/levels/level1.txt": "....\n",
        "bund_pkg/__pycache__/helpers.cpython-311.pyc": b"\x00junk",
        "bund_pkg/.hidden/secret.py": "x = 1\n",
    }
    mod = make_module(files, "bund_pkg.envs.game")
    bundle = build_browser_bundle("solo", env_creator=mod.make_env, render_fn=mod.render, policy_mapping={})
    own = [p for p in paths(bundle) if p.startswith("bund_pkg")]
    assert own == ["bund_pkg/__init__.py", "bund_pkg/envs/__init__.py", "bund_pkg/envs/game.py",
                   "bund_pkg/helpers.py", "bund_pkg/levels/level1.txt"]


def test_big_data_files_in_a_package_are_refused(make_module) -> None:
    mod = make_module({"bund_big/__init__.py": "", "bund_big/game.py": ENV_SOURCE,
                       "bund_big/video.bin": b"\x00" * 2000}, "bund_big.game")
    with pytest.raises(BundleError, match=r"video\.bin is 2000 bytes.*at most 1000"):
        build_browser_bundle("solo", env_creator=mod.make_env, render_fn=mod.render, policy_mapping={},
                             max_data_bytes=1000)


def test_total_size_limit(make_module) -> None:
    mod = make_module({"bund_total.py": ENV_SOURCE}, "bund_total")
    with pytest.raises(BundleError, match="limit is 1000"):
        build_browser_bundle("solo", env_creator=mod.make_env, render_fn=mod.render, policy_mapping={},
                             max_total_bytes=1000)


def test_onnx_models_and_policy_modules_are_included(make_module, tmp_path) -> None:
    env = make_module({"bund_env.py": ENV_SOURCE}, "bund_env")
    pol = make_module({"bund_pol.py": ENV_SOURCE}, "bund_pol")
    model = write(tmp_path / "m.onnx", b"fake-onnx-bytes")
    bundle = build_browser_bundle(
        "solo", env_creator=env.make_env, render_fn=env.render,
        policy_mapping={"h": "human", "ai": OnnxPolicy(model, obs_to_input=pol.encode), "bot": PythonPolicy(pol.policy)},
    )
    assert "bund_pol.py" in paths(bundle)
    entry = bundle.files[bundle.index_of("models/ai.onnx")]
    assert entry.kind == KIND_MODEL and entry.data == b"fake-onnx-bytes"
    assert bundle.files[-1] is entry, "models come after all source files"
    assert all(f.kind == KIND_SOURCE for f in bundle.files[:-1])
    assert b"fake-onnx-bytes" not in bundle.sources_blob()
    assert len(bundle.sources_blob()) == sum(f.size for f in bundle.files if f.kind == KIND_SOURCE)


def test_hash_depends_on_content_not_order(make_module, tmp_path) -> None:
    mod = make_module({"bund_hash.py": ENV_SOURCE}, "bund_hash")
    a = build_browser_bundle("solo", env_creator=mod.make_env, render_fn=mod.render, policy_mapping={})
    b = build_browser_bundle("solo", env_creator=mod.make_env, render_fn=mod.render, policy_mapping={})
    assert a.bundle_hash == b.bundle_hash and len(a.bundle_hash) == 64
    files = [BundleFile.of("x.py", KIND_SOURCE, b"1"), BundleFile.of("y.py", KIND_SOURCE, b"2")]
    assert compute_bundle_hash(files) == compute_bundle_hash(files[::-1])
    changed = [BundleFile.of("x.py", KIND_SOURCE, b"1 "), files[1]]
    assert compute_bundle_hash(changed) != compute_bundle_hash(files)
    (tmp_path / "bund_hash.py").write_text(ENV_SOURCE + "# edited\n")
    c = build_browser_bundle("solo", env_creator=mod.make_env, render_fn=mod.render, policy_mapping={})
    assert c.bundle_hash != a.bundle_hash, "editing the env file changes the recorded hash"


def test_lambdas_nested_functions_and_builtins_are_refused(make_module) -> None:
    mod = make_module({"bund_bad.py": ENV_SOURCE}, "bund_bad")

    def nested(**kw):
        return None

    with pytest.raises(PolicyConfigError, match="lambda"):
        build_browser_bundle("s", env_creator=mod.make_env, render_fn=mod.render,
                             policy_mapping={"b": lambda obs, a: 0})
    with pytest.raises(PolicyConfigError, match="not a module-level function"):
        build_browser_bundle("s", env_creator=mod.make_env, render_fn=mod.render, policy_mapping={"b": nested})
    with pytest.raises(BundleError, match="env_creator .*not a module-level function"):
        build_browser_bundle("s", env_creator=nested, render_fn=mod.render, policy_mapping={})
    with pytest.raises(BundleError, match="render_fn must be a function defined at module level"):
        build_browser_bundle("s", env_creator=mod.make_env, render_fn=sys.exit, policy_mapping={})


def test_server_parts_of_interactive_gym_are_refused(make_module) -> None:
    from interactive_gym.server.static_files import find_node_modules

    mod = make_module({"bund_srv.py": ENV_SOURCE}, "bund_srv")
    with pytest.raises(BundleError, match="does not run in the browser"):
        build_browser_bundle("s", env_creator=find_node_modules, render_fn=mod.render, policy_mapping={})


def test_missing_core_part_is_reported(tmp_path) -> None:
    with pytest.raises(BundleError, match="interactive_gym/nothing_here is missing"):
        core_files(tmp_path, ("nothing_here",))


def test_routes_serve_manifest_files_and_blob_and_404_everything_else(make_module, tmp_path) -> None:
    mod = make_module({"bund_routes.py": ENV_SOURCE}, "bund_routes")
    model = write(tmp_path / "m.onnx", b"model!")
    bundle = build_browser_bundle("solo", env_creator=mod.make_env, render_fn=mod.render,
                                  policy_mapping={"ai": OnnxPolicy(model, obs_to_input=mod.encode)})
    registry = BundleRegistry()
    registry.add(bundle)
    client = AsgiClient(Starlette(routes=registry.routes()))
    url = registry.manifest_url(bundle)
    assert url == f"/bundle/solo/{bundle.bundle_hash}/manifest.json"
    manifest = client.get(url).json()
    assert manifest["hash"] == bundle.bundle_hash and manifest["scene_id"] == "solo"
    assert [f["path"] for f in manifest["files"]] == paths(bundle)
    base = url.rsplit("/", 1)[0]
    index = bundle.index_of("bund_routes.py")
    response = client.get(f"{base}/files/{index}")
    assert response.status_code == 200 and response.content == ENV_SOURCE.encode()
    assert "immutable" in response.headers["cache-control"]
    assert client.get(f"{base}/files/{bundle.index_of('models/ai.onnx')}").content == b"model!"
    assert client.get(f"{base}/sources.bin").content == bundle.sources_blob()
    for bad in (f"{base}/files/{len(bundle.files)}", f"{base}/files/-1", f"{base}/files/../../etc/passwd",
                f"/bundle/other/{bundle.bundle_hash}/manifest.json", "/bundle/solo/0000/manifest.json",
                "/bundle/solo/0000/sources.bin", f"{base}/files/bund_routes.py"):
        assert client.get(bad).status_code == 404, bad
