"""The files a browser-mode scene ships into Pyodide, and the routes that serve them.

Browser mode runs the experiment's environment inside the participant's page. The server decides, once at
start-up, exactly which files that is: the module (or package) defining each function the scene names
(env factory, render function, Python policies, ONNX observation encoders), the ONNX models, and the
pure-Python parts of Interactive Gym the page needs. Files are read once into memory and addressed by
their index in a manifest; the URL carries the bundle hash, so a page never receives a mix of versions
and no file path ever comes from the client. The bundle hash is recorded with every uploaded episode.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import interactive_gym
from interactive_gym.browser.refs import RefError, function_ref, module_name_of
from interactive_gym.policies import OnnxPolicy, PythonPolicy, normalise_policy
from interactive_gym.server.browser_modules import (
    BROWSER_MODULE_NAMES,
    BROWSER_MODULES,
    browser_exports,
    browser_package_init,
    server_side_imports,
)

PACKAGE_DIR = Path(__file__).resolve().parent.parent
# The modules of interactive_gym that run in the page (declared in browser_modules.py). All pure Python.
CORE_PARTS: tuple[str, ...] = BROWSER_MODULES
# Replaces the package's own __init__ in Pyodide: browser-side public names only; server-side ones explain.
CORE_INIT = browser_package_init(interactive_gym._EXPORTS)
MAX_DATA_FILE_BYTES = 2 * 1024 * 1024
MAX_TOTAL_BYTES = 48 * 1024 * 1024
KIND_SOURCE = "source"  # written into Pyodide's file system
KIND_MODEL = "model"  # fetched by onnxruntime-web, never written to the file system


class BundleError(ValueError):
    """The scene's files cannot be shipped to the browser; the message says what to change."""


@dataclass(frozen=True)
class BundleFile:
    """One file of a bundle.

    Attributes:
        path: Where it goes, relative to the bundle root in Pyodide's file system (POSIX separators); for
            models, a descriptive name (``models/<agent>.onnx``).
        kind: ``"source"`` (written to the file system) or ``"model"`` (an ONNX model).
        data: The bytes, read once at start-up.
        sha256: Hex digest of ``data``.
    """

    path: str
    kind: str
    data: bytes
    sha256: str

    @property
    def size(self) -> int:
        return len(self.data)

    @classmethod
    def of(cls, path: str, kind: str, data: bytes) -> BundleFile:
        return cls(path, kind, data, hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class BrowserBundle:
    """Everything one browser-mode scene ships, with a content hash over paths and digests."""

    scene_id: str
    files: tuple[BundleFile, ...]
    bundle_hash: str

    def index_of(self, path: str) -> int:
        """Manifest index of the file at ``path`` (``KeyError`` if absent)."""
        for i, f in enumerate(self.files):
            if f.path == path:
                return i
        raise KeyError(path)

    def manifest(self) -> dict[str, Any]:
        """JSON-ready manifest: the page fetches ``files/<index>`` (or ``sources.bin``) relative to it."""
        return {
            "scene_id": self.scene_id,
            "hash": self.bundle_hash,
            "files": [
                {"index": i, "path": f.path, "kind": f.kind, "size": f.size, "sha256": f.sha256}
                for i, f in enumerate(self.files)
            ],
        }

    def sources_blob(self) -> bytes:
        """All source files concatenated in manifest order (one request; the page splits by size)."""
        return b"".join(f.data for f in self.files if f.kind == KIND_SOURCE)


def compute_bundle_hash(files: Iterable[BundleFile]) -> str:
    """sha256 over the sorted (path, kind, digest) triples: same files, same hash, whatever the order."""
    canonical = json.dumps(sorted([f.path, f.kind, f.sha256] for f in files), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _tree_files(root: Path, dest_prefix: str, max_data_bytes: int) -> list[tuple[str, Path]]:
    """Lists shippable files below ``root``: no caches, no hidden files, data files within the limit."""
    out: list[tuple[str, Path]] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if not path.is_file() or path.suffix in (".pyc", ".pyo"):
            continue
        if path.suffix != ".py" and path.stat().st_size > max_data_bytes:
            raise BundleError(
                f"{path} is {path.stat().st_size} bytes; non-Python files shipped to the browser must be at most "
                f"{max_data_bytes} bytes. Move it out of the package or serve it as an asset."
            )
        out.append((f"{dest_prefix}/{rel.as_posix()}" if dest_prefix else rel.as_posix(), path))
    return out


def module_files(module_name: str, max_data_bytes: int = MAX_DATA_FILE_BYTES) -> list[tuple[str, Path]]:
    """The files that make ``module_name`` importable in Pyodide: ``[(destination, source path)]``.

    A top-level module ships as its single file. A module inside a package ships the whole outermost
    regular package (its siblings and data files are probably used too), at its dotted location. Modules
    in namespace packages only ship their own file.

    Raises:
        BundleError: if the module is not imported, has no file, or a data file is too big.
    """
    module = sys.modules.get(module_name)
    if module is None and module_name == Path(getattr(sys.modules.get("__main__"), "__file__", "") or "").stem:
        module = sys.modules["__main__"]
    file = getattr(module, "__file__", None) if module is not None else None
    if not file:
        raise BundleError(
            f"module {module_name!r} is not loaded from a .py file; browser mode can only ship functions "
            "defined in Python files"
        )
    file_path = Path(file).resolve()
    if not file_path.is_file() or file_path.suffix != ".py":
        raise BundleError(f"module {module_name!r} comes from {file_path}, which is not a .py file")
    parts = module_name.split(".")
    is_package = file_path.name == "__init__.py"
    # Find the outermost regular package (one with an __init__.py) along the dotted name.
    for depth in range(1, len(parts) + (0 if not is_package else 1)):
        pkg = sys.modules.get(".".join(parts[:depth]))
        pkg_file = getattr(pkg, "__file__", None)
        if pkg_file and Path(pkg_file).name == "__init__.py":
            pkg_dir = Path(pkg_file).resolve().parent
            return _tree_files(pkg_dir, "/".join(parts[:depth]), max_data_bytes)
    dest = "/".join(parts[:-1] + [parts[-1] + ".py"])
    return [(dest, file_path)]


def core_files(
    package_dir: Path = PACKAGE_DIR, parts: Sequence[str] = CORE_PARTS, max_data_bytes: int = MAX_DATA_FILE_BYTES
) -> list[BundleFile]:
    """The browser modules of interactive_gym for the page, with the generated top-level ``__init__``.

    ``parts`` are files (or folders, shipped whole) relative to ``package_dir``.

    Raises:
        BundleError: if a listed part is missing from the installed package.
    """
    files = [BundleFile.of("interactive_gym/__init__.py", KIND_SOURCE, CORE_INIT.encode())]
    for part in parts:
        path = package_dir / part
        if path.is_file():
            files.append(BundleFile.of(f"interactive_gym/{part}", KIND_SOURCE, path.read_bytes()))
        elif path.is_dir():
            for dest, src in _tree_files(path, f"interactive_gym/{part}", max_data_bytes):
                files.append(BundleFile.of(dest, KIND_SOURCE, src.read_bytes()))
        else:
            raise BundleError(f"interactive_gym/{part} is missing from the installed package ({path})")
    return files


def _functions_of(env_creator: Any, render_fn: Any, policies: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``[(what it is for, function)]`` for every function the page calls."""
    functions = [("env_creator", env_creator), ("render_fn", render_fn)]
    for agent, policy in policies.items():
        if isinstance(policy, OnnxPolicy):
            functions.append((f"obs_to_input of {agent!r}", policy.obs_to_input))
        elif isinstance(policy, PythonPolicy):
            functions.append((f"policy of {agent!r}", policy.fn))
    return functions


def check_browser_imports(what: str, fn: Any, source_path: Path, module_name: str) -> None:
    """Refuses a function whose module imports server-side Interactive Gym at module level.

    Such a module (typically the experiment file itself, which imports ``GymScene`` and ``RemoteConfig``)
    cannot be imported in the page, so the game would never start.

    Raises:
        BundleError: naming the function, the imports and the fix.
    """
    found = server_side_imports(source_path.read_text(encoding="utf-8"), module_name,
                                browser_exports(interactive_gym._EXPORTS))
    if found:
        file = source_path.name
        raise BundleError(
            f"{what} {module_name}:{getattr(fn, '__name__', fn)} is defined in {file}, which imports "
            f"{', '.join(found)}; those are server-side and do not exist in the browser, so the page could not "
            f"import {file}. Move {what.split(' ')[0]} to a module next to the experiment, e.g. my_env.py, that "
            f"does not import them (browser-side modules such as interactive_gym.rendering and "
            f"interactive_gym.envs.spaces are fine), and import it from {file}"
        )


def build_browser_bundle(
    scene_id: str,
    *,
    env_creator: Callable[..., Any],
    render_fn: Callable[..., Any],
    policy_mapping: Mapping[str, Any],
    extra_modules: Sequence[str] = (),
    package_dir: Path = PACKAGE_DIR,
    core_parts: Sequence[str] = CORE_PARTS,
    max_data_bytes: int = MAX_DATA_FILE_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> BrowserBundle:
    """Collects and hashes every file a browser-mode scene needs.

    Args:
        scene_id: The scene the bundle belongs to (part of its URLs).
        env_creator: Module-level env factory; its module (or package) is shipped.
        render_fn: Module-level ``render(env, surface)``; its module is shipped.
        policy_mapping: ``{agent_id: "human" | OnnxPolicy | PythonPolicy | function}``; Python policies'
            and ONNX encoders' modules are shipped, ONNX models are added as ``models/<agent>.onnx``.
        extra_modules: Further already-imported module names to ship (helpers imported by the env).
        package_dir: The interactive_gym folder whose ``core_parts`` ship.
        core_parts: Parts of interactive_gym that ship.
        max_data_bytes: Largest non-Python file allowed inside a shipped package.
        max_total_bytes: Largest total bundle.

    Raises:
        BundleError: for functions that cannot be shipped, missing files, or size limits.
    """
    policies = {agent: normalise_policy(agent, spec) for agent, spec in policy_mapping.items()}
    files: dict[str, BundleFile] = {f.path: f for f in core_files(package_dir, core_parts, max_data_bytes)}
    module_names = []
    for what, fn in (("env_creator", env_creator), ("render_fn", render_fn)):
        try:
            function_ref(fn, what)
        except RefError as exc:
            raise BundleError(str(exc)) from exc
    functions = _functions_of(env_creator, render_fn, policies)
    for _what, fn in functions:
        module_names.append(module_name_of(fn))
    module_names.extend(extra_modules)
    for name in dict.fromkeys(module_names):
        if name == "interactive_gym" or name.startswith("interactive_gym."):
            if name not in BROWSER_MODULE_NAMES:
                raise BundleError(f"{name} does not run in the browser (browser modules are listed in "
                                  "interactive_gym/server/browser_modules.py)")
            continue
        for dest, src in module_files(name, max_data_bytes):
            if dest.startswith("interactive_gym/"):
                raise BundleError(f"{src} would overwrite interactive_gym's own files in the browser")
            files.setdefault(dest, BundleFile.of(dest, KIND_SOURCE, src.read_bytes()))
    for what, fn in functions:
        name = module_name_of(fn)
        file = getattr(sys.modules.get(name), "__file__", None)
        if file is None and name == Path(getattr(sys.modules.get("__main__"), "__file__", "") or "").stem:
            file = sys.modules["__main__"].__file__
        if file and not name.startswith("interactive_gym"):
            check_browser_imports(what, fn, Path(file), name)
    for agent, policy in policies.items():
        if isinstance(policy, OnnxPolicy):
            path = f"models/{agent}.onnx"
            files[path] = BundleFile.of(path, KIND_MODEL, policy.model_path.read_bytes())
    ordered = tuple(sorted(files.values(), key=lambda f: (f.kind != KIND_SOURCE, f.path)))
    total = sum(f.size for f in ordered)
    if total > max_total_bytes:
        raise BundleError(f"the browser bundle of scene {scene_id!r} is {total} bytes; the limit is {max_total_bytes}")
    return BrowserBundle(scene_id, ordered, compute_bundle_hash(ordered))


class BundleRegistry:
    """The bundles of an app's browser-mode scenes, and the routes that serve them.

    Routes (``prefix`` defaults to ``/bundle``; everything else is 404):
        ``GET {prefix}/{scene_id}/{hash}/manifest.json`` - the manifest.
        ``GET {prefix}/{scene_id}/{hash}/files/{index}`` - one file's bytes.
        ``GET {prefix}/{scene_id}/{hash}/sources.bin`` - all source files concatenated in manifest order.
    """

    def __init__(self, prefix: str = "/bundle") -> None:
        self.prefix = prefix.rstrip("/")
        self._bundles: dict[str, BrowserBundle] = {}

    def add(self, bundle: BrowserBundle) -> None:
        """Registers (or replaces) the bundle of ``bundle.scene_id``."""
        self._bundles[bundle.scene_id] = bundle

    def get(self, scene_id: str) -> BrowserBundle | None:
        return self._bundles.get(scene_id)

    def manifest_url(self, bundle: BrowserBundle) -> str:
        """The URL the page loads the manifest from."""
        return f"{self.prefix}/{bundle.scene_id}/{bundle.bundle_hash}/manifest.json"

    def _lookup(self, request: Request) -> BrowserBundle | None:
        bundle = self._bundles.get(request.path_params["scene_id"])
        if bundle is None or bundle.bundle_hash != request.path_params["bundle_hash"]:
            return None
        return bundle

    async def _manifest(self, request: Request) -> Response:
        bundle = self._lookup(request)
        if bundle is None:
            return JSONResponse({"error": "unknown scene or bundle hash"}, status_code=404)
        return JSONResponse(bundle.manifest(), headers={"Cache-Control": "no-cache"})

    async def _file(self, request: Request) -> Response:
        bundle = self._lookup(request)
        index = request.path_params["index"]
        if bundle is None or not 0 <= index < len(bundle.files):
            return JSONResponse({"error": "unknown file"}, status_code=404)
        entry = bundle.files[index]
        media = "text/x-python" if entry.path.endswith(".py") else "application/octet-stream"
        # The hash in the URL changes whenever any file does, so the content at this URL never changes.
        return Response(entry.data, media_type=media, headers={"Cache-Control": "public, max-age=31536000, immutable"})

    async def _sources(self, request: Request) -> Response:
        bundle = self._lookup(request)
        if bundle is None:
            return JSONResponse({"error": "unknown scene or bundle hash"}, status_code=404)
        return Response(
            bundle.sources_blob(),
            media_type="application/octet-stream",
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )

    def routes(self) -> list[Route]:
        """Starlette routes; add them to the app (``Starlette(routes=[*registry.routes(), ...])``)."""
        base = self.prefix + "/{scene_id:str}/{bundle_hash:str}"
        return [
            Route(base + "/manifest.json", self._manifest, methods=["GET"]),
            Route(base + "/files/{index:int}", self._file, methods=["GET"]),
            Route(base + "/sources.bin", self._sources, methods=["GET"]),
        ]
