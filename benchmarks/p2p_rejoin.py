"""Rejoin after a reload in a p2p game: "reload to playing again", between two headless Chromium contexts.

Each run is the e2e scenario of ``tests/e2e/test_p2p_rejoin_in_browsers.py``: two pages play Fruit Gatherers
(30 fps, 900 steps, fixed input delay 2, WebRTC on loopback) against the real experiment server; about 4 s in one
page is reloaded, gets the running game back from its partner and both play to the end. Per run:

* ``seconds``: from ``page.reload()`` to the page's status showing the game playing again;
* ``rejoined``: where it resumed (frame, step), ``page_ms`` (its navigation to playing) and ``ms`` (its game
  loaded to playing: the snapshot request, transfer and load);
* ``loading``: when the new page's interpreter download/compilation ended and when it asked for the game's files
  (ms after its navigation): the interpreter's start-up is most of the time;
* ``survivor_stalled_frames``: frames the partner's page stalled from the reload to a second after the rejoin;
* the parity verdict (must agree) and both pages' end reasons (must be complete).

Target (issue 11): rejoin to playing again under 5 s. Prints one JSON document (``machine``, ``runs``,
``median_seconds``) and writes it to ``benchmarks/results/p2p_rejoin.json``. Run under the browser lock:
``flock /tmp/ig-browser.lock .venv/bin/python benchmarks/p2p_rejoin.py [--runs 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))  # reuse the browser-test helpers and the scenario itself
sys.path.insert(1, str(ROOT / "tests"))  # after tests/e2e (its conftest): the service helpers (service_process.py)

from conftest import BASE_ARGS, CHROMIUM, LiveServer, launch_chromium  # noqa: E402
from p2p_experiments import read_db  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from test_p2p_rejoin_in_browsers import rejoin_run  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "p2p_rejoin.json"

# Where the reloaded page's time went, from its own timeline (ms after its navigation started): the marks the
# loader sets (pyodide_loader.js markLoad) and every resource it fetched, with whether it came over the network.
# transferSize 0 with a body = from the HTTP cache unchecked; a few hundred bytes = revalidated (304).
PAGE_TIMELINE = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const marks = {};
  for (const m of performance.getEntriesByType("mark")) {
    if (m.name.startsWith("ig:")) (marks[m.name.slice(3)] ??= []).push(Math.round(m.startTime));
  }
  const path = (url) => new URL(url).pathname;
  const resources = performance.getEntriesByType("resource")
    .filter((e) => !e.name.includes("/socket.io/?"))
    .map((e) => ({path: path(e.name), start: Math.round(e.startTime), end: Math.round(e.responseEnd),
                  transfer: e.transferSize, body: e.decodedBodySize}));
  return {document_ms: Math.round(nav?.responseEnd ?? -1), dom_ready_ms: Math.round(nav?.domContentLoadedEventEnd ?? -1),
          marks, resources};
}"""


def breakdown(timeline: dict[str, Any], page_ms: float) -> dict[str, Any]:
    """The reloaded page's load in consecutive parts (ms), from its timeline (the first interpreter start, the
    last of every other mark: a page that starts a second interpreter waits for that one)."""
    marks = {name: times[0] if name == "pyodide-start" else times[-1] for name, times in timeline["marks"].items()}
    wasm = [r for r in timeline["resources"] if r["path"].endswith("/pyodide.asm.wasm")]
    network = [r for r in timeline["resources"] if r["transfer"] > 1000]
    revalidated = [r for r in timeline["resources"] if 0 < r["transfer"] <= 1000]
    parts = {
        "page_to_loader_start": marks.get("pyodide-start", -1),  # document, scripts, socket, scene, game view
        "interpreter_download": (wasm[-1]["end"] if wasm else -1) - marks.get("pyodide-start", 0),
        "interpreter_start": marks.get("python-started", -1) - (wasm[-1]["end"] if wasm else 0),  # compile + Python
        # the game's files download beside the interpreter: what is left of that after Python started, + writing
        "game_files": marks.get("game-files-installed", -1) - marks.get("python-started", 0),
        "game_host": marks.get("game-host-built", -1) - marks.get("game-files-installed", 0),
        "host_to_playing": round(page_ms) - marks.get("game-host-built", 0),  # renderer, connection, rejoin
    }
    return {"parts_ms": parts, "interpreters_started": len(timeline["marks"].get("pyodide-start", [])),
            "wasm_fetches": len(wasm),
            "network_bytes": sum(r["transfer"] for r in network),
            "from_network": sorted({r["path"] for r in network}),
            "revalidated": len(revalidated),
            "from_cache": sum(1 for r in timeline["resources"] if r["transfer"] == 0 and r["body"] > 0)}


PERMISSIONS = ["camera", "microphone"]  # ICE candidates on a loopback-only machine (BROWSER_TESTING.md)


def one_run(p: Any, browser: Any, seed: int, disk_cache: bool) -> dict[str, Any]:
    """One rejoin run. ``disk_cache``: each participant in a browser of their own with a profile on disk (what a
    participant has: its HTTP cache keeps Pyodide's 9.6 MB wasm); otherwise the tests' in-memory contexts of
    one browser, whose cache does not keep a file that big (every reload downloads it again)."""
    servers: list[LiveServer] = []
    contexts: list[Any] = []

    def live_server(app: Any) -> LiveServer:
        servers.append(LiveServer(app).start())
        return servers[-1]

    with tempfile.TemporaryDirectory() as tmp:
        def new_context() -> Any:
            if disk_cache:
                profile = Path(tmp) / f"profile-{len(contexts)}"
                contexts.append(p.chromium.launch_persistent_context(
                    profile, executable_path=CHROMIUM, args=BASE_ARGS, permissions=PERMISSIONS))
            else:
                contexts.append(browser.new_context(permissions=PERMISSIONS))
            return contexts[-1]

        db = Path(tmp) / "rejoin.sqlite"
        try:
            run = rejoin_run(live_server, new_context, db, seed=seed)
            (reloaded,) = [page for c in contexts for page in c.pages if "subject_id=reloads" in page.url]
            run["timeline"] = reloaded.evaluate(PAGE_TIMELINE)
            run["breakdown"] = breakdown(run["timeline"], run["rejoined"]["page_ms"])
        finally:
            for ctx in contexts:
                ctx.close()
            for server in servers:
                server.stop()
        verdicts = read_db(db)["verdicts"]
    run["parity_agree"] = [v["agree"] for v in verdicts]
    run["seconds"] = round(run["seconds"], 2)
    run.pop("agents", None)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--disk-cache", action="store_true",
                        help="each participant in a browser with an on-disk profile (see one_run)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where the JSON goes (default {OUT.relative_to(ROOT)})")
    args = parser.parse_args()
    for name in ("TURN_USERNAME", "TURN_CREDENTIAL", "TURN_SECRET", "TURN_URLS"):
        os.environ.pop(name, None)  # loopback only
    machine = {"cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2),
               "python": platform.python_version(), "chromium": "/usr/bin/chromium (Debian)",
               "browsers": "one per participant, profile on disk" if args.disk_cache else "one, in-memory contexts"}
    runs = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            for i in range(args.runs):
                runs.append(one_run(p, browser, seed=100 + i, disk_cache=args.disk_cache))
                print(f"run {i + 1}: {runs[-1]['seconds']} s {json.dumps(runs[-1]['breakdown'])}", file=sys.stderr)
        finally:
            browser.close()
    machine["loadavg_1m_end"] = round(os.getloadavg()[0], 2)
    document = {"machine": machine, "runs": runs,
                "median_seconds": statistics.median(r["seconds"] for r in runs),
                "median_page_ms": statistics.median(r["rejoined"]["page_ms"] for r in runs),
                "median_snapshot_ms": statistics.median(r["rejoined"]["ms"] for r in runs),
                "median_parts_ms": {part: statistics.median(r["breakdown"]["parts_ms"][part] for r in runs)
                                    for part in runs[0]["breakdown"]["parts_ms"]},
                "all_complete_and_agree": all(r["reasons"] == {"stays": "complete", "reloads": "complete"}
                                              and r["parity_agree"] == [True] for r in runs),
                "target_seconds": 5.0}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
