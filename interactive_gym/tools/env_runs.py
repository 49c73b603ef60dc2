"""Runs an environment's checksum trace in other interpreters, for ``check-env``.

* :func:`cpython_run`: a fresh CPython process under a chosen ``PYTHONHASHSEED``;
* :func:`pyodide_run`: Pyodide in Node (``node`` and the project's ``node_modules/pyodide``), given the
  same files a browser-mode scene ships (:mod:`interactive_gym.server.pyodide_bundle`).

Both send a :class:`~interactive_gym.envs.trace.TraceRequest` and get a
:class:`~interactive_gym.envs.trace.TraceResult` back; a process that fails or times out comes back as a
result with ``error`` set, never as an exception. ``python -m interactive_gym.tools.env_runs`` is the
CPython worker: request JSON on stdin, result JSON on stdout.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

from interactive_gym.envs.determinism import PYTHON_HASH_SEED, hash_seed_env
from interactive_gym.envs.factory import load_factory
from interactive_gym.envs.trace import TraceRequest, TraceResult, run_request

PACKAGE_DIR = Path(__file__).resolve().parent.parent
PYODIDE_SCRIPT = Path(__file__).with_name("pyodide_trace.mjs")
# What the trace itself needs in Pyodide beyond the modules every page gets (pages never run a trace).
TRACE_MODULES: tuple[str, ...] = ("envs/trace.py", "envs/factory.py", "envs/determinism.py")
CPYTHON_TIMEOUT_S = 300.0
PYODIDE_TIMEOUT_S = 600.0


def failed_result(label: str, message: str) -> TraceResult:
    """A result that says the run in ``label`` could not be done."""
    return {"runtime": label, "hash_seed": None, "checksums": [], "mismatch": None, "state": None,
            "error": message}


def _parse(label: str, completed: subprocess.CompletedProcess[str]) -> TraceResult:
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        tail = completed.stderr.strip()[-1500:] or "(no output)"
        return failed_result(label, f"the {label} process exited with code {completed.returncode}: {tail}")
    try:
        return cast(TraceResult, json.loads(lines[-1]))
    except json.JSONDecodeError:
        return failed_result(label, f"the {label} process printed no result: {lines[-1][:200]!r}")


def cpython_run(request: TraceRequest, hash_seed: str, timeout: float = CPYTHON_TIMEOUT_S) -> TraceResult:
    """Runs ``request`` in a new CPython process (this interpreter's executable) with ``PYTHONHASHSEED``."""
    label = f"CPython (PYTHONHASHSEED={hash_seed})"
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "interactive_gym.tools.env_runs"], input=json.dumps(request),
            env=hash_seed_env(seed=hash_seed), capture_output=True, text=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        return failed_result(label, f"the {label} process did not finish within {timeout:.0f} s")
    return _parse(label, completed)


def pyodide_files(target: str) -> dict[str, str]:
    """``{path: base64 content}``: the target's module and interactive_gym's browser parts, as shipped to a
    page, plus :data:`TRACE_MODULES`.

    Raises:
        FactoryError: when the target cannot be imported here.
        BundleError: when the target's module cannot be shipped (the browser could not load it either).
    """
    from interactive_gym.server.pyodide_bundle import KIND_SOURCE, core_files, module_files

    load_factory(target)  # module_files ships what is imported

    files = {f.path: base64.b64encode(f.data).decode() for f in core_files() if f.kind == KIND_SOURCE}
    for part in TRACE_MODULES:
        files.setdefault(f"interactive_gym/{part}", base64.b64encode((PACKAGE_DIR / part).read_bytes()).decode())
    for dest, src in module_files(target.partition(":")[0]):
        files.setdefault(dest, base64.b64encode(src.read_bytes()).decode())
    return files


def pyodide_run(request: TraceRequest, files: dict[str, str], node_modules: Path,
                timeout: float = PYODIDE_TIMEOUT_S) -> TraceResult:
    """Runs ``request`` in Pyodide in Node, started with ``PYTHONHASHSEED`` = the peers' seed."""
    label = f"Pyodide (PYTHONHASHSEED={PYTHON_HASH_SEED})"
    node = shutil.which("node")
    if node is None:
        return failed_result(label, "--pyodide needs Node.js (the `node` command) on the PATH")
    payload = {"index_path": str(node_modules / "pyodide") + "/", "env": {"PYTHONHASHSEED": PYTHON_HASH_SEED},
               "files": files, "request": dict(request, sys_path=[])}
    try:
        completed = subprocess.run([node, str(PYODIDE_SCRIPT)], input=json.dumps(payload), capture_output=True,
                                   text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return failed_result(label, f"the {label} process did not finish within {timeout:.0f} s")
    return _parse(label, completed)


def main() -> int:
    """The CPython worker: one request from stdin, its result as the last line of stdout."""
    request: Any = json.loads(sys.stdin.read())
    with contextlib.redirect_stdout(sys.stderr):  # the env's own prints must not mix with the result
        result = run_request(request)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
