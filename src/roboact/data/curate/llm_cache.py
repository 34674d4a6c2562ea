"""Persistent cache of LLM answers (SQLite), so a rerun or a crash never re-asks or loses an answer.

Keyed by sha256(model, prompt template, instruction): changing the model or the prompt asks again, anything
else reuses the stored answer. Each answer is committed as soon as it arrives (WAL journal), so killing a
run loses at most the requests in flight. Only answers that parsed are stored; failures are asked again.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

_SCHEMA = """CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, instruction TEXT NOT NULL,
    content TEXT NOT NULL, parsed TEXT NOT NULL, created REAL NOT NULL)"""


class LLMCacheError(RuntimeError):
    """The cache file exists but is not a usable SQLite database; names the file."""


def open_sqlite(path: Path, schema: str, error: type[Exception]) -> sqlite3.Connection:
    """One WAL-mode connection shared by threads (callers serialise with a lock); a file that is not a
    usable database raises `error` naming it, instead of being overwritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(schema)
        conn.commit()
        return conn
    except sqlite3.DatabaseError as e:
        raise error(f"{path}: not a usable SQLite cache ({e}); move it away to start afresh") from None


def cache_key(model: str, prompt_template: str, instruction: str) -> str:
    blob = json.dumps([model, prompt_template, instruction], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class LLMCache:
    """Thread-safe: one connection guarded by a lock (SQLite writes are serialised anyway)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = open_sqlite(self.path, _SCHEMA, LLMCacheError)

    def get(self, key: str) -> str | None:
        """The stored raw answer for `key`, or None."""
        with self._lock:
            row = self._conn.execute("SELECT content FROM answers WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, model: str, instruction: str, content: str, parsed: dict) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?)",
                               (key, model, instruction, content, json.dumps(parsed, ensure_ascii=False),
                                time.time()))
            self._conn.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "LLMCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
