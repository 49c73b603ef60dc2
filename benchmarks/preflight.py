"""Start-up preflight time per scene (CPython and Pyodide) for an experiment, median of several runs.

Each run is a fresh process (``interactive-gym check`` would be the same: load the experiment, then play every
game scene's first frames where it runs), so Pyodide's start is paid every run, as at a real start-up. Prints
JSON: per-scene and total medians with their ranges, the machine, and the load it ran under; ``--out`` keeps it.

    .venv/bin/python benchmarks/preflight.py [--experiment examples/demo/experiment.py] [--runs 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

ONE_RUN = """
import json, sys, time
from interactive_gym.experiment_loader import load_experiment
from interactive_gym.preflight.runner import run_preflight
t0 = time.perf_counter()
config = load_experiment(sys.argv[1])
config.validate()
loaded = (time.perf_counter() - t0) * 1000
report = run_preflight(config)
print(json.dumps({"load_ms": loaded, "total_ms": report.total_ms, "pyodide_start_ms": report.pyodide_start_ms,
                  "scenes": [{"scene_id": r.scene_id, "mode": r.mode, "runtime": r.runtime, "ms": r.ms, "ok": r.ok}
                             for r in report.results]}))
"""


def one_run(experiment: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", ONE_RUN, str(experiment)], cwd=experiment.parent,
                          capture_output=True, text=True, check=True, timeout=300)
    return json.loads(done.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1), "max": round(max(values), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", type=Path, default=ROOT / "examples" / "demo" / "experiment.py")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.runs < 3:
        parser.error("--runs must be at least 3 (figures are medians of three or more runs)")
    experiment = args.experiment.resolve()
    load_before = os.getloadavg()
    runs = [one_run(experiment) for _ in range(args.runs)]
    scenes: dict[str, dict[str, Any]] = {}
    for run in runs:
        for scene in run["scenes"]:
            entry = scenes.setdefault(scene["scene_id"], {"mode": scene["mode"], "runtime": scene["runtime"], "ms": []})
            entry["ms"].append(scene["ms"])
    starts = [r["pyodide_start_ms"] for r in runs if r["pyodide_start_ms"] is not None]
    result = {
        "experiment": str(experiment.relative_to(ROOT)) if experiment.is_relative_to(ROOT) else str(experiment),
        "runs": args.runs,
        "all_ok": all(s["ok"] for r in runs for s in r["scenes"]),
        "total_ms": spread([r["total_ms"] for r in runs]),
        "load_experiment_ms": spread([r["load_ms"] for r in runs]),
        "pyodide_start_ms": spread(starts) if starts else None,
        "scenes": {sid: {"mode": e["mode"], "runtime": e["runtime"], "ms": spread(e["ms"])} for sid, e in scenes.items()},
        "raw": runs,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "load_average": {"before": load_before, "after": os.getloadavg()},
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
