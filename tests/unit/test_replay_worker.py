"""HashSeededPool: replay workers run with the browser's hash seed; jobs are plain data; a dead worker is replaced."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest

from interactive_gym.envs.determinism import PYTHON_HASH_SEED, hash_seed_env
from interactive_gym.replay_worker import EnvSource, HashSeededPool, ReplayJob, run_job, worker_hash

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
if str(DEMO) not in sys.path:
    sys.path.append(str(DEMO))  # inherited by the spawned workers


def hash_under(seed: str, text: str) -> int:
    out = subprocess.check_output([sys.executable, "-c", f"print(hash({text!r}))"], env=hash_seed_env(seed=seed))
    return int(out)


def exit_in_worker(code: int) -> None:
    if multiprocessing.parent_process() is None:
        raise RuntimeError("only meant to run in a worker process")
    os._exit(code)


def test_the_worker_hashes_strings_as_under_the_browser_seed_and_the_parent_environment_is_untouched() -> None:
    before = os.environ.get("PYTHONHASHSEED")
    with HashSeededPool() as pool:
        seed, value = pool.submit(worker_hash, "x").result(timeout=60)
    assert os.environ.get("PYTHONHASHSEED") == before
    assert seed == PYTHON_HASH_SEED
    assert value == hash_under(PYTHON_HASH_SEED, "x")
    assert value != hash_under("1", "x")  # the seed really changes str hashes, so the check above means something


def test_every_worker_of_a_larger_pool_has_the_seed() -> None:
    with HashSeededPool(workers=2) as pool:
        futures = [pool.submit(worker_hash, "abc") for _ in range(6)]
        seen = {f.result(timeout=60) for f in futures}
    assert seen == {(PYTHON_HASH_SEED, hash_under(PYTHON_HASH_SEED, "abc"))}


def test_a_dead_worker_is_replaced_by_one_with_the_same_seed() -> None:
    with HashSeededPool() as pool:
        with pytest.raises(Exception, match="terminated abruptly"):
            pool.submit(exit_in_worker, 3).result(timeout=60)
        assert pool.submit(worker_hash, "x").result(timeout=60) == (PYTHON_HASH_SEED, hash_under(PYTHON_HASH_SEED, "x"))


def test_a_job_whose_factory_cannot_be_imported_reports_why() -> None:
    result = run_job(ReplayJob(EnvSource(factory="no_such_module:make_env"), seed=1, steps=[]))
    assert result.verdict is None and "cannot import module 'no_such_module'" in (result.error or "")
    result = run_job(ReplayJob(EnvSource(scene_id="orchard"), seed=1, steps=[]))
    assert result.verdict is None and "needs its experiment file" in (result.error or "")


def test_a_job_replays_in_the_worker() -> None:
    import gatherers
    from test_browser_replay import record

    steps = record(gatherers, seed=3, frames=40, max_steps=40)
    job = ReplayJob(EnvSource(factory="gatherers:make_env", max_steps=40), seed=3, steps=steps)
    with HashSeededPool() as pool:
        result = pool.submit(run_job, job).result(timeout=60)
    assert result.verdict is not None and result.verdict.match, result.verdict
    assert result.verdict.steps == 40 and result.hash_seed == PYTHON_HASH_SEED
