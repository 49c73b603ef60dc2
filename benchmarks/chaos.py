"""The chaos test's figures: N seeded runs of ten chaotic participants in real Chromium (tests/e2e/chaos_scenario.py).

Each run serves the chaos experiment (consent, instructions, a server-mode game for two, a browser-mode game,
a p2p game for two, the end) and lets ten participants with seeded random behaviour through it: double clicks,
hidden tabs, reloads, 2-5 s offline, tabs closed for good, keys while playing. A participant who does not leave
must be on a clear page within the bound (BOUND_S from opening the link): that is ``stranded``, which must be 0.
The database checks (statuses, whole episodes, attempts, p2p parity) must find no problem.

Prints one JSON document: runs, participants, stranded, problems, statuses (histogram over every run), the
longest time to a clear page, the disruptions that happened, load (os.getloadavg before and after), machine.
The raw outcome of every participant goes to benchmarks/results/chaos.json.

Usage (it starts Chromium: run it under the browser lock):
``flock /tmp/ig-browser.lock .venv/bin/python benchmarks/chaos.py [--seeds 3] [--first-seed 1]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))  # the scenario and its checks live with the browser tests
sys.path.insert(1, str(ROOT / "tests"))  # after tests/e2e (its conftest): the service helpers (service_process.py)

from chaos_checks import check_run  # noqa: E402
from chaos_scenario import BOUND_S, PARTICIPANTS, ChaosRun, run_chaos  # noqa: E402

from interactive_gym.server.storage import Storage  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "chaos.json"


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "chromium": "/usr/bin/chromium (Debian)"}


def p2p_connections(db: Path) -> dict[str, int]:
    """How each stored p2p episode's inputs travelled: ``direct``/``relay`` (WebRTC) or ``socket`` (the server
    relay, when no DataChannel opened)."""
    storage = Storage(db, readonly=True)
    try:
        kinds: Counter[str] = Counter()
        for row in storage.episodes():
            if row.mode == "p2p":
                network = row.meta.get("network") or {}
                kinds[(network.get("connection") or {}).get("type") or "socket"] += 1
        return dict(kinds)
    finally:
        storage.close()


def summarise(run: ChaosRun) -> dict[str, Any]:
    """One run: its problems, statuses and every participant's outcome."""
    problems, statuses = check_run(run)
    return {
        "seed": run.seed, "seconds": run.seconds, "problems": problems, "statuses": dict(statuses),
        "p2p_connections": p2p_connections(run.db),
        "participants": [{"plan": asdict(o.plan), "left": o.left, "stranded": o.stranded,
                          "clear_after_s": o.clear_after_s, "expected_status": o.expected_status, "done": o.done,
                          "final": o.final, "timeline": o.timeline, "errors": o.errors[:20],
                          "console": o.console[-40:] if o.stranded else []} for o in run.outcomes],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="number of runs (seeds first-seed, first-seed+1, ...)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--participants", type=int, default=PARTICIPANTS)
    args = parser.parse_args()
    load_before = os.getloadavg()
    runs = []
    # The databases are kept (their folder is in the output): a problem is investigated from the data.
    databases = Path(tempfile.mkdtemp(prefix="ig-chaos-"))
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        runs.append(summarise(run_chaos(seed, databases, args.participants)))
        print(f"seed {seed}: {runs[-1]['seconds']} s, problems {len(runs[-1]['problems'])}", file=sys.stderr)
    people = [p for r in runs for p in r["participants"]]
    statuses: Counter[str] = Counter()
    for r in runs:
        statuses.update(r["statuses"])
    clear = [p["clear_after_s"] for p in people if p["clear_after_s"] is not None]
    summary = {
        "runs": len(runs), "participants": len(people), "stranded": sum(p["stranded"] for p in people),
        "left_for_good": sum(p["left"] for p in people), "problems": sum(len(r["problems"]) for r in runs),
        "statuses": dict(statuses), "bound_s": BOUND_S, "max_time_to_clear_page_s": max(clear, default=None),
        "disruptions": dict(Counter(d.split("@")[0] for p in people for d in p["done"])),
        "double_clickers": sum(p["plan"]["double_click"] for p in people),
        "run_seconds": [r["seconds"] for r in runs],
        "p2p_episode_connections": dict(sum((Counter(r["p2p_connections"]) for r in runs), Counter())),
        "load": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]},
        "machine": machine(),
        "databases": str(databases),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"summary": summary, "runs": runs}, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":  # required: the server's replay verifier starts worker processes (spawn)
    main()
