"""roboact.utils.shutdown: the first signal raises Stopped (or only sets the flag inside `deferred`), a second
one cuts through, pool workers stop with their parent - even one killed by SIGKILL - and leave no half file."""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from roboact.utils import shutdown
from roboact.utils.io import atomic_path

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="process-tree checks read /proc (Linux)")


def signal_soon(sig: int = signal.SIGTERM, after: float = 0.2, times: int = 1) -> None:
    def send():
        for _ in range(times):
            time.sleep(after)
            os.kill(os.getpid(), sig)
    threading.Thread(target=send, daemon=True).start()


def sleep_for(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)


def slow_write(path: str) -> str:
    """A pool job: an atomic write that takes 30 s (so a stop always lands inside it)."""
    with atomic_path(path) as tmp:
        tmp.write_text("half")
        sleep_for(30)
        tmp.write_text("done")
    return path


def wait_dead(pids, timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(shutdown.alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if shutdown.alive(p)]


def wait_for(pred, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_signal_stops_the_command_with_its_exit_status_and_one_line(caplog):
    def body():
        shutdown.note("3 of 5 episodes")
        signal_soon(signal.SIGTERM)
        sleep_for(10)
        return 0

    t0 = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="roboact.utils.shutdown"):
        assert shutdown.run_command("simulate", body, exit_stuck=False) == 143
    assert time.monotonic() - t0 < 5
    (line,) = [r.getMessage() for r in caplog.records]
    assert line == ("roboact simulate: stopped by SIGTERM; finished: 3 of 5 episodes; rerun the same command to "
                    "resume (exit status 143)")
    signal_soon(signal.SIGINT)
    assert shutdown.run_command("x", lambda: sleep_for(10), exit_stuck=False) == 130
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers are put back


def test_deferred_stops_at_the_safe_point_and_a_second_signal_cuts_through():
    reached = []

    def body():
        with shutdown.deferred():
            signal_soon(after=0.1)
            wait_for(shutdown.requested, 5)
            reached.append("safe point")          # the first signal did not interrupt the block
        reached.append("after the block")         # never: leaving the block raises the stop

    assert shutdown.run_command("train", body, exit_stuck=False) == 143
    assert reached == ["safe point"]

    def stuck():
        with shutdown.deferred():
            signal_soon(after=0.2, times=2)
            sleep_for(10)                         # a loop that never polls: the second signal ends it

    t0 = time.monotonic()
    assert shutdown.run_command("train", stuck, exit_stuck=False) == 143
    assert time.monotonic() - t0 < 5


def test_stop_ends_pool_workers_mid_job_and_their_temporary_files_go(tmp_path):
    dest = tmp_path / "out.txt"
    pids = []

    def body():
        with shutdown.worker_pool(2) as pool:
            futs = [shutdown.submit(pool, slow_write, str(dest))]
            wait_for(lambda: list(tmp_path.glob(".out.txt.*")))   # the worker is inside the write
            pids.extend(shutdown.descendants())
            os.kill(os.getpid(), signal.SIGTERM)
            futs[0].result()

    t0 = time.monotonic()
    assert shutdown.run_command("demos", body, exit_stuck=False) == 143
    assert time.monotonic() - t0 < 30
    assert len(pids) >= 2 and not wait_dead(pids)
    assert not dest.exists() and not list(tmp_path.iterdir())


def stubborn_write(path: str) -> str:
    """A pool job that swallows the first stop, as one does when the signal lands in a `__del__` (Python
    prints "Exception ignored" there and goes on), then carries on writing."""
    with atomic_path(path) as tmp:
        tmp.write_text("half")
        try:
            sleep_for(30)
        except KeyboardInterrupt:
            sleep_for(30)
        tmp.write_text("done")
    return path


@pytest.mark.parametrize("job", ["slow_write", "stubborn_write"])
def test_workers_stop_when_their_parent_is_killed(tmp_path, job):
    """SIGKILL cannot be caught: the workers notice their parent is gone and unwind their job, and end anyway
    (a second stop, then without cleanup) when the job swallowed the first one. The old one-shot SIGTERM left
    a stubborn worker running its jobs - then waiting for more - long after its parent died."""
    code = f"""
import sys, time
sys.path[:0] = {[str(Path(__file__).parents[2]), str(Path(__file__).parents[2] / 'src')]!r}
from roboact.utils import shutdown
from tests.utils.test_shutdown import {job}
pool = shutdown.process_pool(1)
shutdown.submit(pool, {job}, {str(tmp_path / 'out.txt')!r})
time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        wait_for(lambda: list(tmp_path.glob(".out.txt.*")))
        pids = shutdown.descendants(proc.pid)
        assert pids
        proc.kill()
        proc.wait(10)
        assert not wait_dead(pids, 4 + shutdown.WATCH_S)
        assert not list(tmp_path.iterdir())   # both unwound: the second stop lands outside the swallowing spot
    finally:
        with contextlib.suppress(OSError):  # whatever a failed run left
            os.killpg(proc.pid, signal.SIGKILL)


def test_terminate_kills_what_ignores_sigterm():
    proc = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                             "signal.SIG_IGN); print(1, flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    proc.stdout.readline()
    assert shutdown.terminate([proc.pid], grace=0.3) == [proc.pid]
    assert proc.wait(5) == -signal.SIGKILL
