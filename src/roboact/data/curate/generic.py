"""A generic curate source: a CSV or JSONL list of videos and their instructions.

Required columns: `path` (video file, relative to the list's folder or absolute) and `instruction`.
Optional: `clip_id` (default: the path without suffix, '/' -> '__'), `subject` (default: --subject),
`task`, `camera`, `embodiment`, `split`. Other columns are kept in the clip's `extra`.
A row that cannot be read (not UTF-8, not JSON, missing column, bad split) or that names a file that does
not exist becomes a rejection row; only a missing or empty list is an error.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from roboact.data.curate.items import Rejection, SourceItem
from roboact.data.manifest import SPLITS

_KNOWN = {"path", "instruction", "clip_id", "subject", "task", "camera", "embodiment", "split"}


def scan_manifest(path: Path, default_subject: str = "Robot") -> tuple[list[SourceItem], list[Rejection]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: video list not found")
    data = path.read_bytes()
    if not data.strip():
        raise ValueError(f"{path}: video list is empty")
    rows = _read_jsonl(data) if _is_jsonl(path, data) else _read_csv(data)
    if not rows:
        raise ValueError(f"{path}: video list has no rows (only a header?)")
    items, rejections = [], []
    for lineno, row in rows:
        where = f"{path.name}:{lineno}"
        got = row if isinstance(row, str) else _to_item(row, path.parent, where, default_subject)
        if isinstance(got, str):
            rejections.append(Rejection(where, str(path), "source", "bad_row", f"{where}: {got}"))
        elif not got.video.is_file():
            rejections.append(Rejection.of(got, "source", "no_video", f"{where}: video file not found: {got.video}"))
        else:
            items.append(got)
    return items, rejections


def _is_jsonl(path: Path, data: bytes) -> bool:
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        return True
    if path.suffix.lower() in (".csv", ".tsv"):
        return False
    return data.lstrip()[:1] == b"{"


def _read_jsonl(data: bytes) -> list[tuple[int, dict | str]]:
    """(line number, row dict or the reason it is unreadable) per non-blank line."""
    rows: list[tuple[int, dict | str]] = []
    for lineno, raw in enumerate(data.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            rows.append((lineno, "line is not valid UTF-8"))
            continue
        except json.JSONDecodeError as e:
            rows.append((lineno, f"not valid JSON ({e.msg})"))
            continue
        rows.append((lineno, obj if isinstance(obj, dict) else f"expected a JSON object, got {type(obj).__name__}"))
    return rows


def _read_csv(data: bytes) -> list[tuple[int, dict | str]]:
    """Decoded with surrogateescape so one bad row does not hide the others; such rows are reported."""
    text = data.decode("utf-8", errors="surrogateescape")
    dialect = "excel-tab" if text.split("\n", 1)[0].count("\t") > text.split("\n", 1)[0].count(",") else "excel"
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=dialect)
    rows: list[tuple[int, dict | str]] = []
    for row in reader:
        lineno = reader.line_num
        values = [v for v in row.values() if isinstance(v, str)] + [k for k in row if isinstance(k, str)]
        if any(_has_surrogates(v) for v in values):
            rows.append((lineno, "row is not valid UTF-8"))
        elif None in row:
            rows.append((lineno, f"more fields than the header has columns ({reader.fieldnames})"))
        else:
            rows.append((lineno, {k: v for k, v in row.items() if v is not None}))
    return rows


def _has_surrogates(s: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in s)


def _id_from_path(rel: str) -> str:
    """'clips/a/b.mp4' -> 'clips__a__b': ids stay usable as file names downstream."""
    return str(Path(rel).with_suffix("")).replace("\\", "/").strip("/").replace("/", "__")


def _to_item(row: dict, base: Path, where: str, default_subject: str) -> SourceItem | str:
    """A SourceItem, or the reason the row cannot be one."""
    if not isinstance(row.get("path"), str) or not row["path"].strip():
        return "missing or non-text column 'path'"
    if not isinstance(row.get("instruction"), str):  # an empty text is judged with the other instructions
        return "missing or non-text column 'instruction'"
    optional = {k: row.get(k, "") for k in ("clip_id", "subject", "task", "camera", "embodiment", "split")}
    bad = [k for k, v in optional.items() if not isinstance(v, str)]
    if bad:
        return f"column '{bad[0]}' must be text, got {optional[bad[0]]!r}"
    split = optional["split"].strip() or "train"
    if split not in SPLITS:
        return f"split must be one of {SPLITS}, got {split!r}"
    rel = row["path"].strip()
    video = Path(rel) if Path(rel).is_absolute() else (base / rel)
    clip_id = optional["clip_id"].strip() or _id_from_path(rel)
    return SourceItem(clip_id=clip_id, video=video.absolute(), instruction=row["instruction"],
                      subject=optional["subject"].strip() or default_subject, origin=where,
                      task=optional["task"], camera=optional["camera"], embodiment=optional["embodiment"],
                      split=split, source="manifest", extra={k: v for k, v in row.items() if k not in _KNOWN})
