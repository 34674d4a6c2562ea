"""Frame counting for accepted clips, cached on disk so a rerun over ~200k videos does not decode again.

The cache is keyed by (absolute path, size, mtime), so a replaced, re-encoded or repaired file is counted
afresh. Failures are cached too (with their message): a rerun does not wait on a broken file again.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

from roboact.data.video import VideoError, count_frames
from roboact.data.curate.llm_cache import open_sqlite

_SCHEMA = """CREATE TABLE IF NOT EXISTS probe (
    path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    num_frames INTEGER NOT NULL, fps REAL NOT NULL, error TEXT NOT NULL,
    PRIMARY KEY (path, size, mtime_ns))"""


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float


class ProbeCache:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = open_sqlite(self.path, _SCHEMA, RuntimeError)

    def probe(self, video: Path) -> VideoInfo:
        """(frames, fps) of `video`; raises VideoError for a missing/empty/truncated/zero-frame file."""
        key = _stat_key(video)
        if key is None:
            n, fps = count_frames(video)  # raises "not found"
            return VideoInfo(n, fps)
        with self._lock:
            row = self._conn.execute("SELECT num_frames, fps, error FROM probe WHERE path=? AND size=? "
                                     "AND mtime_ns=?", key).fetchone()
        if row is None:
            row = self._count(video, key)
        if row[2]:
            raise VideoError(row[2])
        return VideoInfo(int(row[0]), float(row[1]))

    def _count(self, video: Path, key: tuple[str, int, int]) -> tuple[int, float, str]:
        try:
            n, fps = count_frames(video)
            row = (n, fps, "")
        except VideoError as e:
            row = (0, 0.0, str(e))
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO probe VALUES (?, ?, ?, ?, ?, ?)", (*key, *row))
            self._conn.commit()
        return row

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _stat_key(video: Path) -> tuple[str, int, int] | None:
    try:
        st = video.stat()
    except OSError:
        return None
    return str(video.resolve()), st.st_size, st.st_mtime_ns
