"""Preempt a roboact command the way a cluster scheduler does, and check what it must leave behind.

`Command` starts `roboact ...` as a subprocess (optionally after a small `patch` of Python run first in the
command's main process, to slow a step down so the signal lands mid-way), `stop` sends SIGTERM (or
SIGKILL) to the command's process only, as the issue's scheduler did, then checks that every process of its
tree is gone within a few seconds. `temp_files` lists what atomic writes leave when interrupted.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from roboact.utils.shutdown import alive, descendants

REPO = Path(__file__).resolve().parents[1]


def temp_files(root: Path) -> list[Path]:
    """Temporary files of roboact.utils.io.atomic_path (`.<name>.<random>.tmp<suffix>`), and checkpoint
    folders being written, anywhere under root."""
    return sorted(p for p in Path(root).rglob(".*") if ".tmp" in p.name)


def wait_dead(pids, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


class Command:
    def __init__(self, argv: list[str], log: Path, patch: str = "", cwd: Path | None = None, python: bool = False):
        """`roboact argv...`, or with `python`, `python argv...` (e.g. torchrun's `-m torch.distributed.run`)."""
        self.log = Path(log)
        code = f"import sys\n{patch}\nfrom roboact.cli import main\nsys.exit(main({[str(a) for a in argv]!r}))\n"
        args = [str(a) for a in argv] if python else ["-c", code]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO),
                                                           os.environ.get("PYTHONPATH", "")])}
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, *args], stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=True)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pred, timeout: float = 180.0) -> None:
        """Until pred() holds; fails (with the command's output) if the command ends first."""
        deadline = time.monotonic() + timeout
        while not pred():
            assert self.proc.poll() is None, f"the command ended (rc {self.proc.returncode}) first:\n{self.text()}"
            assert time.monotonic() < deadline, f"timed out waiting:\n{self.text()}"
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, workers: int = 0, exit_within: float = 15.0,
             gone_within: float = 5.0) -> int:
        """Send `sig` to the command's process; return its exit status once it and every process of its
        tree (at least `workers` of them besides itself) are gone."""
        pids = [self.proc.pid, *descendants(self.proc.pid)]
        assert len(pids) > workers, f"expected {workers} worker processes, found {pids[1:]}"
        t0 = time.monotonic()
        os.kill(self.proc.pid, sig)
        rc = self.proc.wait(exit_within)
        left = wait_dead(pids, gone_within)
        assert not left, f"still alive {time.monotonic() - t0:.1f} s after {signal.Signals(sig).name}: " + \
            "; ".join(_cmdline(p) for p in left)
        return rc

    def finish(self, timeout: float = 300.0) -> int:
        rc = self.proc.wait(timeout)
        assert rc == 0, self.text()
        return rc

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def __enter__(self) -> "Command":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _cmdline(pid: int) -> str:
    try:
        return f"{pid}: " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:160]
    except OSError:
        return str(pid)
