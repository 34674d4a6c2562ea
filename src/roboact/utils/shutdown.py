"""Stopping on SIGTERM / SIGINT: every worker ends within seconds, every output stays complete or absent.

A cluster scheduler preempts a job by sending SIGTERM, waiting a grace period (typically 30-120 s), then
SIGKILL. Python's default for SIGTERM is to die on the spot, which orphans worker processes: they keep
running, and writing, after the command is gone. So every roboact command runs inside `run_command`
(roboact.cli does this), and everything that starts workers goes through this module:

- The first SIGTERM or SIGINT raises `Stopped` in the main thread. It is a KeyboardInterrupt, so every
  existing Ctrl-C cleanup path runs, and `atomic_path` (roboact.utils.io) deletes the temporary file of a
  write it interrupts. Inside `deferred()` the first signal only sets a flag that the loop polls with
  `requested()` (training finishes its step and writes a checkpoint). A second signal raises at once even
  there and makes the teardown skip its grace period; a third ends the process on the spot.
- Worker processes (`process_pool`; DataLoader workers through `install_worker_handlers`) stop on
  SIGTERM/SIGINT after unwinding the job they run, so their atomic writes clean up too, and stop on their
  own, within `WATCH_S`, when their parent dies - even by SIGKILL, which nothing can catch (and end
  without cleanup `ORPHAN_GRACE_S` later if their job swallowed the stop).
- After a stop, `run_command` ends what is left of this process's tree (resource tracker included), logs
  one line saying what was finished and how to resume, and returns the exit status 128 + signal number:
  143 for SIGTERM, 130 for SIGINT (the shell's convention, which torchrun and Slurm report as such).

Finished work is always on disk under its final name (written atomically, its done-marker last), so the
rerun of the same command skips it and redoes only what was in flight.
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)
GRACE_S = 3.0      # how long stopped workers get to unwind before SIGKILL
WATCH_S = 0.5      # how often a worker checks that its parent is still alive
ORPHAN_GRACE_S = 2.5  # how long a worker whose parent died may unwind its job before it ends itself
RESUME = "rerun the same command to resume"


def exit_status(signum: int) -> int:
    """128 + the signal number: 143 for SIGTERM, 130 for SIGINT."""
    return 128 + int(signum)


class Stopped(KeyboardInterrupt):
    """A stop was requested by `signum`; raised in the main thread (see the module docstring)."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = int(signum)

    @property
    def exit_status(self) -> int:
        return exit_status(self.signum)


class _State:
    def __init__(self) -> None:
        self.event = threading.Event()   # set by the first signal; threads and loops poll it
        self.signum = 0
        self.count = 0                   # signals received
        self.deferred = 0                # depth of deferred() blocks
        self.finishing = False           # the teardown after a stop is running
        self.done: dict[str, str] = {}   # what is finished, by topic, for the one-line report
        self.resume = RESUME


_state = _State()
_in_job = False                          # worker side: a job is running in this process's main thread


# --- the main process ----------------------------------------------------------------------------------

def requested() -> bool:
    """True once SIGTERM/SIGINT has arrived; long loops poll this inside `deferred()`."""
    return _state.event.is_set()


def stop_event() -> threading.Event:
    """The flag as an Event, for threads to `wait` on instead of sleeping through a stop."""
    return _state.event


def hurry() -> bool:
    """A second signal arrived: teardown skips its grace period."""
    return _state.count >= 2


def raise_stopped() -> None:
    """Raise the requested stop (a loop that polled `requested()` calls this once it is at a safe point)."""
    raise Stopped(_state.signum or signal.SIGTERM)


def note(done: str, resume: str | None = None, topic: str = "") -> None:
    """Record what is finished so far (and, if not 'rerun the same command', how to resume) for the
    line logged after a stop; a later note on the same `topic` replaces the earlier one. Cheap; call it
    as work finishes."""
    _state.done[topic] = done
    if resume is not None:
        _state.resume = resume


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Inside, the first signal only sets the flag: the code polls `requested()` and stops at a safe point
    (e.g. after a training step, or a group of output files that must be written together)."""
    _state.deferred += 1
    try:
        yield
    finally:
        _state.deferred -= 1
    if requested() and not _state.deferred and not _state.finishing:
        raise_stopped()


def _on_signal(signum: int, frame) -> None:
    _state.count += 1
    if not _state.signum:
        _state.signum = signum
    _state.event.set()
    if _state.count >= 3:  # third signal: no more cleanup
        terminate_tree(grace=0)
        os._exit(exit_status(_state.signum))
    if _state.finishing or (_state.deferred and _state.count == 1):
        return
    raise Stopped(_state.signum)


@contextlib.contextmanager
def handlers() -> Iterator[None]:
    """Install the SIGTERM/SIGINT handlers (main thread only; elsewhere a no-op), with a fresh state that
    is dropped again on the way out (a library caller's later work must not see an old stop)."""
    global _state
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _state = _State()
    old = {s: signal.signal(s, _on_signal) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _state = _State()


def run_command(command: str, fn: Callable[[], int | None], exit_stuck: bool = True) -> int:
    """Run a command with the handlers installed; after a stop, tear down and return the exit status.

    Whatever exception surfaces after a stop (Stopped, or a worker's error raised by the teardown) counts
    as the stop. `exit_stuck`: end the process at once when threads that cannot be interrupted (an HTTP
    request in flight) would otherwise hold it at exit."""
    with handlers():
        try:
            return int(fn() or 0)
        except BaseException:
            if not requested():
                raise
        return finish(command, exit_stuck)


def finish(command: str, exit_stuck: bool = True) -> int:
    """End the rest of the process tree, log the one-line report, return the exit status."""
    _state.finishing = True
    terminate_tree(grace=0 if hurry() else GRACE_S)
    stop_resource_tracker()
    status = exit_status(_state.signum or signal.SIGTERM)
    name = signal.Signals(_state.signum or signal.SIGTERM).name
    done = f"; finished: {'; '.join(d for d in _state.done.values() if d)}" if any(_state.done.values()) else ""
    log.warning("roboact %s: stopped by %s%s; %s (exit status %d)", command, name, done, _state.resume, status)
    stuck = [t for t in threading.enumerate() if t is not threading.current_thread() and t.is_alive()
             and not t.daemon]
    if exit_stuck and stuck:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


# --- the process tree ----------------------------------------------------------------------------------

def descendants(pid: int | None = None) -> list[int]:
    """Every live process below `pid` (default: this one), children first. Linux reads /proc; elsewhere
    only this process's multiprocessing children are known."""
    pid = os.getpid() if pid is None else pid
    proc = Path("/proc")
    if not proc.is_dir():
        return [p.pid for p in mp.active_children()] if pid == os.getpid() else []
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] != "Z":
                children.setdefault(stat[1], []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(0), []):
            out.append(c)
            todo.append(c)
    return out


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) from /proc/<pid>/stat; None when the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (an exited child its parent has not reaped yet)."""
    if Path("/proc").is_dir():
        stat = _stat(pid)
        return stat is not None and stat[0] != "Z"
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def terminate(pids: Iterable[int], grace: float = GRACE_S) -> list[int]:
    """SIGTERM `pids`, wait up to `grace` s for them to end, SIGKILL the rest; returns the ones killed."""
    pids = [p for p in pids if alive(p)]
    for p in pids:
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    killed = [p for p in pids if alive(p)]
    for p in killed:
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGKILL)
    return killed


def _tracker_pid() -> int | None:
    from multiprocessing import resource_tracker

    return getattr(resource_tracker._resource_tracker, "_pid", None)


def terminate_tree(grace: float = GRACE_S) -> None:
    """End every process below this one except multiprocessing's resource tracker, which exits by itself
    (after removing leaked semaphores) once no process holds its pipe: see `stop_resource_tracker`."""
    tracker = _tracker_pid()
    terminate([p for p in descendants() if p != tracker], grace)
    for child in mp.active_children():  # reap them, so they leave no zombie entries
        child.join(timeout=0.1)


def stop_resource_tracker() -> None:
    """Close this process's end of the resource tracker's pipe and wait for it to exit (it can once the
    workers are gone); SIGKILL it if it does not within a second."""
    from multiprocessing import resource_tracker

    pid = _tracker_pid()
    if pid is None:
        return
    waiter = threading.Thread(target=resource_tracker._resource_tracker._stop, daemon=True)
    waiter.start()
    waiter.join(1.0)
    if waiter.is_alive() and alive(pid):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


# --- worker processes ----------------------------------------------------------------------------------

def install_worker_handlers(parent: int | None = None) -> None:
    """In a worker process: SIGTERM/SIGINT end it (after unwinding a running `call` job), and so does the
    death of `parent` (default: the current parent). DataLoader workers call this from their worker_init_fn."""
    for s in SIGNALS:
        signal.signal(s, _on_worker_signal)
    parent = os.getppid() if parent is None else parent
    if os.getppid() != parent:  # it died while this worker was starting
        os._exit(exit_status(signal.SIGTERM))
    threading.Thread(target=_watch_parent, args=(parent,), name="roboact-parent-watch", daemon=True).start()


def _on_worker_signal(signum: int, frame) -> None:
    if _in_job:
        raise Stopped(signum)  # unwinds the job: its atomic writes delete their temporary files
    os._exit(exit_status(signum))


def _watch_parent(parent: int) -> None:
    """Once the parent is gone: SIGTERM this worker, so a running job unwinds and its atomic writes delete
    their temporary files. One delivery is not enough: a handler that runs inside a `__del__` or a callback
    from C raises into code where Python only prints "Exception ignored" and goes on, so the job carries on
    and, once done, the worker waits on its job queue forever (seen in CI: a `roboact demos` worker alive
    after its parent's SIGKILL). So the signal is sent again after a second, and the process ends without
    cleanup once ORPHAN_GRACE_S has passed - an unwinding job needs milliseconds."""
    while os.getppid() == parent:
        time.sleep(WATCH_S)
    deadline = time.monotonic() + ORPHAN_GRACE_S
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(min(1.0, ORPHAN_GRACE_S / 2))
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(max(0.0, deadline - time.monotonic()))
    os._exit(exit_status(signal.SIGTERM))


def worker_init(parent: int, initializer: tuple[str, str] | None = None, initargs: tuple = ()) -> None:
    """Initializer of `process_pool` workers: the handlers above, then the pool's own initializer. That one
    comes by name and is imported only now: importing its module (torch, a simulator) takes seconds, and a
    worker must already notice a dead parent meanwhile."""
    install_worker_handlers(parent)
    if initializer is not None:
        import importlib

        module, name = initializer
        getattr(importlib.import_module(module), name)(*initargs)


def call(fn: Callable, *args: Any) -> Any:
    """Run one job in a worker; a stop while it runs ends the worker once the job has unwound."""
    global _in_job
    _in_job = True
    try:
        return fn(*args)
    except Stopped as e:
        os._exit(e.exit_status)
    finally:
        _in_job = False


def process_pool(workers: int, initializer: Callable | None = None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """A spawn pool (each worker: a fresh interpreter, its own GL context) whose workers stop with us."""
    ref = None if initializer is None else (initializer.__module__, initializer.__qualname__)
    return ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=worker_init,
                               initargs=(os.getpid(), ref, initargs))


@contextlib.contextmanager
def worker_pool(workers: int, initializer: Callable | None = None,
                initargs: tuple = ()) -> Iterator[ProcessPoolExecutor]:
    """`with worker_pool(n) as pool:` a `process_pool`, closed by `close_pool` however the block ends."""
    pool = process_pool(workers, initializer, initargs)
    try:
        yield pool
    except BaseException as e:
        close_pool(pool, e)
        raise
    close_pool(pool)


def submit(pool: ProcessPoolExecutor, fn: Callable, *args: Any) -> Future:
    """`pool.submit(fn, *args)` through `call`; `fn` must be a module-level function."""
    return pool.submit(call, fn, *args)


def close_pool(pool: ProcessPoolExecutor, error: BaseException | None = None) -> None:
    """Shut `pool` down. Normally (or after an ordinary error) running jobs finish first; after a stop
    the workers are ended now (SIGTERM, then SIGKILL after the grace period) and queued jobs dropped."""
    if not (requested() or isinstance(error, KeyboardInterrupt)):
        pool.shutdown(wait=True, cancel_futures=True)
        return
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    terminate([p.pid for p in procs if p.pid], grace=0 if hurry() else GRACE_S)
    for p in procs:
        p.join(timeout=0.5)
