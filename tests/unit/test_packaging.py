"""The built wheel holds every file the installed package reads at run time besides its Python modules: the
Node scripts next to their modules (preflight, check-env in Pyodide), the page's static files and templates.

Runs setuptools' own build step of a wheel (``build_py``, offline, on a copy of the sources so the tree gets no
build output) and looks at what it laid out.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import setuptools

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "interactive_gym"


def _source_files(pattern: str) -> set[str]:
    return {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob(pattern) if "__pycache__" not in p.parts}


def test_the_wheel_contents_include_the_node_scripts_static_files_and_templates(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(ROOT / "README.md", src / "README.md")
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    if int(setuptools.__version__.split(".")[0]) < 77:
        # An older offline setuptools cannot read the SPDX license string (isolated builds get >= 77, as
        # build-system.requires says); the table form it reads does not change which files are packaged.
        assert 'license = "MIT"' in pyproject
        pyproject = pyproject.replace('license = "MIT"', 'license = {text = "MIT"}')
    (src / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    shutil.copytree(PACKAGE, src / "interactive_gym", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path / "lib"
    # build_py lays out exactly what a wheel holds (bdist_wheel zips its output); it needs no `wheel` package.
    done = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py",
                           "--build-lib", str(out)], cwd=src, capture_output=True, text=True, timeout=240,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    shipped = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert "interactive_gym/cli.py" in shipped
    scripts = _source_files("*.mjs")
    assert {"interactive_gym/preflight/pyodide_preflight.mjs", "interactive_gym/tools/pyodide_trace.mjs"} <= scripts
    assert scripts - shipped == set()
    static = {f for f in _source_files("*") if f.startswith(("interactive_gym/server/static/",
                                                              "interactive_gym/server/templates/"))
              and (ROOT / f).is_file()}
    assert static and static - shipped == set()
