"""Sampling profile of the benchmark server with py-spy (``pip install py-spy``), summarised into cost buckets.

cProfile slows an asyncio server down several times and counts every coroutine resumption as a call;
py-spy samples the running process from outside (pausing it only microseconds per sample), so the shares it
reports are close to what the server does unprofiled. :func:`summarise_collapsed` is pure: it reads py-spy's
``raw`` (collapsed stacks) output and returns self-time leaders and the share of named cost buckets.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# What a server tick spends its time on; a sample counts for a bucket if any frame of its stack matches.
# Checked in order, first match wins, so every sample lands in at most one bucket.
BUCKETS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("step record encoding for the database (encode_step / value_codec)", ("encode_step (",)),
    ("render_fn + Surface + packet diff (ServerGame._render)", ("ServerGame._render (",)),
    ("env step + key mapping (ServerGame.tick minus render)", ("tick (",)),
    ("Socket.IO emit: packet build, binary scan, JSON, per-recipient tasks", ("emit (",)),
    ("Engine.IO writer tasks: queue, websocket frame, socket send", ("writer (",)),
    ("incoming events: websocket read, parse, keys handler", ("data_received (", "_read_ready (", "receive (")),
    ("data writer thread (SQLite commits)", ("_thread_main (",)),
)


def py_spy_path() -> str | None:
    """The py-spy executable next to this Python, or on PATH."""
    local = Path(sys.executable).with_name("py-spy")
    return str(local) if local.exists() else shutil.which("py-spy")


def start_recording(pid: int, seconds: int, out: Path, rate: int = 100) -> subprocess.Popen[bytes]:
    """Starts py-spy sampling ``pid`` for ``seconds`` into ``out`` (collapsed stacks).

    Blocking mode (py-spy pauses the process for each sample, microseconds at 100 Hz): non-blocking reads
    of a running asyncio process misattributed up to 7 % of samples to functions that cost 3 us per call.
    ``--gil``: only samples of the thread holding the GIL count, i.e. the interpreter time that limits how
    many games one process holds (a thread parked on a lock or in a syscall is not charged; the kernel's
    share of sending shows up in the server's system CPU time instead).
    """
    exe = py_spy_path()
    if exe is None:
        raise RuntimeError("--py-spy needs py-spy: `.venv/bin/pip install py-spy`")
    cmd = [exe, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(rate), "--format", "raw",
           "--gil", "--output", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _function(frame: str) -> str:
    """``name (path/file.py:line)`` -> ``name (file.py)``: one row per function, not per line."""
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rsplit("/", 1)[-1]
    return f"{name} ({file})"


def summarise_collapsed(text: str, top: int = 20) -> dict[str, Any]:
    """Summarises py-spy ``raw`` output: bucket shares, top functions by self and by inclusive samples."""
    total = 0
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[_function(frames[-1])] += count
        for name in {_function(f) for f in frames}:
            inclusive[name] += count
        bucket = next((label for label, needles in BUCKETS if any(n in stack for n in needles)), "other")
        buckets[bucket] += count

    def share(counter: Counter[str], n: int | None) -> list[dict[str, Any]]:
        return [{"name": k, "pct": round(100 * v / total, 1)} for k, v in counter.most_common(n)]

    if not total:
        return {"samples": 0}
    return {"samples": total, "buckets": share(buckets, None), "top_self": share(own, top),
            "top_inclusive": share(inclusive, top)}
