"""Child process for the SIGKILL tests: writes through a DataWriter and prints every acknowledgement.

Usage: ``python crash_writer.py DB MODE SYNCHRONOUS FLUSH_INTERVAL_S`` (DB: an SQLite file or a postgresql:// URL)

MODE ``acks``: runs awaited writes of every kind concurrently, forever; after each one returns it prints a
line naming what is now acknowledged (and therefore must survive a kill):

    EVENT <event_id> <i>        record_event("crash-test", {"i": i}) returned event_id
    PARTICIPANT <participant_id> upsert_participant(...) returned
    STEPS <episode_id> <t_end>  steps 0..t_end-1 of that episode were appended, then flush() returned
    UPLOAD <episode_id> <n>     write_episode(...) with n steps returned episode_id

MODE ``buffered``: appends one step at a time without ever awaiting a flush and prints
``APPENDED <episode_id> <t> <monotonic seconds>`` after each, so the parent can see what the timer commits.

Stdout is flushed after every line: a line the parent has read was printed after the acknowledgement.
"""

from __future__ import annotations

import asyncio
import sys
import time

import numpy as np

from interactive_gym.server.data_writer import DataWriter, StepRecord


def say(*parts: object) -> None:
    # One write() per line: a pipe write under PIPE_BUF bytes is atomic, so a kill never cuts a line.
    sys.stdout.write(" ".join(str(part) for part in parts) + "\n")
    sys.stdout.flush()


def make_step(t: int) -> StepRecord:
    observation = np.arange(16, dtype=np.float32) + t
    return StepRecord(
        t, observation, {"a0": t % 5}, {"a0": float(t)}, False, False, {"t": t}, {"a0": []}, 1.0 * t
    )


async def events_forever(writer: DataWriter, lane: int) -> None:
    i = lane
    while True:
        event_id = await writer.record_event("crash-test", {"i": i})
        say("EVENT", event_id, i)
        i += 8


async def participants_forever(writer: DataWriter) -> None:
    n = 0
    while True:
        participant_id = f"p{n}"
        await writer.upsert_participant(participant_id, url_params={"n": n}, status="active")
        say("PARTICIPANT", participant_id)
        n += 1


async def steps_forever(writer: DataWriter) -> None:
    episode_id = await writer.begin_episode(
        scene_id="game",
        game_id="server-game",
        episode=0,
        mode="server",
        source="server",
        seed=0,
        agents={"a0": "p0"},
    )
    t = 0
    while True:
        writer.append_steps(episode_id, [make_step(t + k) for k in range(5)])
        t += 5
        await writer.flush()
        say("STEPS", episode_id, t)


async def uploads_forever(writer: DataWriter) -> None:
    episode = 0
    while True:
        n = 20 + episode % 7
        episode_id = await writer.write_episode(
            scene_id="game",
            game_id="browser-game",
            episode=episode,
            mode="browser",
            source="p0",
            seed=episode,
            agents={"a0": "p0"},
            steps=[make_step(t) for t in range(n)],
            status="complete",
        )
        say("UPLOAD", episode_id, n)
        episode += 1


async def buffered_forever(writer: DataWriter) -> None:
    episode_id = await writer.begin_episode(
        scene_id="game",
        game_id="buffered-game",
        episode=0,
        mode="server",
        source="server",
        seed=0,
        agents={},
    )
    t = 0
    while True:
        writer.append_steps(episode_id, [make_step(t)])
        say("APPENDED", episode_id, t, f"{time.monotonic():.6f}")
        t += 1
        await asyncio.sleep(0.002)


async def main(db_path: str, mode: str, synchronous: str, flush_interval_s: float) -> None:
    writer = DataWriter(
        db_path, experiment_id="crash", flush_interval_s=flush_interval_s, synchronous=synchronous
    )
    await writer.start()
    say("READY")
    if mode == "acks":
        lanes = [events_forever(writer, lane) for lane in range(8)]
        await asyncio.gather(
            *lanes, participants_forever(writer), steps_forever(writer), uploads_forever(writer)
        )
    elif mode == "buffered":
        await buffered_forever(writer)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
