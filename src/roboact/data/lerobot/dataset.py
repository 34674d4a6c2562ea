"""A local LeRobot dataset folder, read with pyarrow alone (no `lerobot`, `datasets` or pandas).

Layout (LeRobot's lerobot/datasets/utils.py and lerobot_dataset.py):

    meta/info.json        codebase_version, fps, features (a camera is a feature with dtype "video"),
                          data_path / video_path templates, chunks_size, robot_type
    v3.0  meta/episodes/chunk-XXX/file-XXX.parquet   one row per episode: episode_index, tasks, length,
                          data/chunk_index, data/file_index, dataset_from_index, dataset_to_index and per
                          camera videos/<key>/chunk_index, file_index, from_timestamp, to_timestamp
          meta/tasks.parquet                          task_index, the text as (pandas) index or column
          data/chunk-XXX/file-XXX.parquet             frames of many episodes
          videos/<key>/chunk-XXX/file-XXX.mp4         many episodes back to back: an episode is the
                                                      stretch [from_timestamp, to_timestamp) of its file
    v2.x  meta/episodes.jsonl {"episode_index", "tasks", "length"}; meta/tasks.jsonl {"task_index", "task"}
          data/chunk-XXX/episode_XXXXXX.parquet and videos/chunk-XXX/<key>/episode_XXXXXX.mp4: one file
          per episode (chunk = episode_index // chunks_size)

Frames (data parquet rows) carry episode_index, frame_index, timestamp (= frame_index / fps), index,
task_index and the features (observation.state, action, ...). LeRobot finds a camera frame at
from_timestamp + timestamp in the episode's video, which is what `video_frames` does.

A folder that is not a dataset, an unsupported codebase_version or a table missing a column LeRobot
always writes is a `LeRobotError` naming the file and field. Problems confined to one episode or camera
(a missing video file or camera column, a frame file that cannot be read, a task_index with no task) are
returned as text beside the episode, so a caller can reject that one and keep the rest.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SUPPORTED_VERSIONS = ("v2.0", "v2.1", "v3.0")


class LeRobotError(ValueError):
    """The folder is not a usable LeRobot dataset; the message names the file and the field."""


def _pq():
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise LeRobotError("reading or writing a LeRobot dataset needs pyarrow: "
                           "pip install 'roboact[lerobot]'") from None
    return pq


@dataclass(frozen=True)
class VideoRef:
    path: Path                                  # the mp4 (may not exist: callers check)
    time_range: tuple[float, float] | None      # v3.0: the episode's stretch of the file; v2.x: whole file


@dataclass
class EpisodeMeta:
    index: int
    length: int
    tasks: list[str]                            # as the episodes table lists them
    where: str                                  # file (and row) the episode is described in, for messages
    data_file: Path | None = None               # parquet holding its frames
    videos: dict[str, VideoRef | str] = field(default_factory=dict)   # camera key -> video, or why none


class LeRobotDataset:
    """Metadata of a local dataset; frames and video stretches are read on demand."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise LeRobotError(f"{self.root}: LeRobot dataset folder not found")
        info_path = self.root / "meta" / "info.json"
        if not info_path.is_file():
            raise LeRobotError(f"{self.root}: not a LeRobot dataset (no meta/info.json)")
        self.info = _read_json_object(info_path)
        self.version = self.info.get("codebase_version")
        if self.version not in SUPPORTED_VERSIONS:
            raise LeRobotError(f"{info_path}: codebase_version {self.version!r} is not supported "
                               f"(supported: {', '.join(SUPPORTED_VERSIONS)})")
        fps = self.info.get("fps")
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or fps <= 0:
            raise LeRobotError(f"{info_path}: fps must be a positive number, got {fps!r}")
        self.fps = float(fps)
        features = self.info.get("features")
        if not isinstance(features, dict) or not features:
            raise LeRobotError(f"{info_path}: features must be a non-empty object")
        self.features: dict[str, dict] = features
        self.video_keys = [k for k, ft in features.items() if isinstance(ft, dict) and ft.get("dtype") == "video"]
        for name in ("data_path",) + (("video_path",) if self.video_keys else ()):
            if not isinstance(self.info.get(name), str):
                raise LeRobotError(f"{info_path}: {name} must be a path template, got {self.info.get(name)!r}")
        self.chunks_size = int(self.info.get("chunks_size") or 1000)
        self.robot_type = str(self.info.get("robot_type") or "")
        self.tasks = self._read_tasks()

    @property
    def v3(self) -> bool:
        return self.version == "v3.0"

    # --- tasks ---------------------------------------------------------------------------------------

    def _read_tasks(self) -> dict[int, str]:
        return self._read_tasks_v3() if self.v3 else self._read_tasks_v2()

    def _read_tasks_v3(self) -> dict[int, str]:
        path = self.root / "meta" / "tasks.parquet"
        table = _read_parquet(path)
        if "task_index" not in table.column_names:
            raise LeRobotError(f"{path}: no column task_index (columns: {', '.join(table.column_names)})")
        text = _task_text_column(table)
        if text is None:
            raise LeRobotError(f"{path}: no task text column (looked for the pandas index, 'task' and "
                               f"'__index_level_0__'; columns: {', '.join(table.column_names)})")
        return {int(i): str(t) for i, t in zip(table.column("task_index").to_pylist(),
                                               table.column(text).to_pylist()) if i is not None and t is not None}

    def _read_tasks_v2(self) -> dict[int, str]:
        path = self.root / "meta" / "tasks.jsonl"
        tasks = {}
        for lineno, row in _read_jsonl(path):
            if not isinstance(row.get("task_index"), int) or not isinstance(row.get("task"), str):
                raise LeRobotError(f"{path}:{lineno}: a row needs an integer task_index and a text task, got {row}")
            tasks[row["task_index"]] = row["task"]
        return tasks

    # --- episodes ------------------------------------------------------------------------------------

    def episodes(self, only: list[int] | None = None) -> list[EpisodeMeta]:
        """Every episode (or those in `only`), in episode order; LeRobotError naming the unknown ones."""
        eps = self._episodes_v3() if self.v3 else self._episodes_v2()
        if only:
            have = {e.index for e in eps}
            unknown = sorted(set(only) - have)
            if unknown:
                raise LeRobotError(f"{self.root}: no episode {', '.join(map(str, unknown[:10]))} in the dataset "
                                   f"({len(eps)} episodes, indices {min(have, default=0)}..{max(have, default=-1)})")
            keep = set(only)
            eps = [e for e in eps if e.index in keep]
        return eps

    def _episodes_v2(self) -> list[EpisodeMeta]:
        path = self.root / "meta" / "episodes.jsonl"
        eps = []
        for lineno, row in _read_jsonl(path):
            where = f"{path}:{lineno}"
            idx, length, tasks = row.get("episode_index"), row.get("length"), row.get("tasks", [])
            if not isinstance(idx, int) or not isinstance(length, int) or length < 1:
                raise LeRobotError(f"{where}: a row needs an integer episode_index and a positive length, got {row}")
            chunk = idx // self.chunks_size
            ep = EpisodeMeta(idx, length, [t for t in tasks if isinstance(t, str)] if isinstance(tasks, list) else [],
                             where, self._template("data_path", episode_chunk=chunk, episode_index=idx))
            for key in self.video_keys:
                ep.videos[key] = VideoRef(self._template("video_path", episode_chunk=chunk, video_key=key,
                                                         episode_index=idx), None)
            eps.append(ep)
        return sorted(eps, key=lambda e: e.index)

    def _episodes_v3(self) -> list[EpisodeMeta]:
        folder = self.root / "meta" / "episodes"
        files = sorted(folder.glob("*/*.parquet"))
        if not files:
            raise LeRobotError(f"{folder}: no episode tables (meta/episodes/chunk-XXX/file-XXX.parquet)")
        eps = []
        for path in files:
            names = _parquet_columns(path)
            table = _read_parquet(path, [c for c in names if not c.startswith("stats/")])
            for col in ("episode_index", "length", "data/chunk_index", "data/file_index"):
                if col not in table.column_names:
                    raise LeRobotError(f"{path}: no column {col}")
            for row_no, row in enumerate(table.to_pylist()):
                eps.append(self._episode_v3(row, f"{path} row {row_no}"))
        return sorted(eps, key=lambda e: e.index)

    def _episode_v3(self, row: dict, where: str) -> EpisodeMeta:
        idx, length = row["episode_index"], row["length"]
        if not isinstance(idx, int) or not isinstance(length, int) or length < 1:
            raise LeRobotError(f"{where}: episode_index must be an integer and length a positive integer, "
                               f"got {idx!r} and {length!r}")
        tasks = row.get("tasks") or []
        ep = EpisodeMeta(idx, length, [t for t in tasks if isinstance(t, str)], where,
                         self._template("data_path", chunk_index=row["data/chunk_index"],
                                        file_index=row["data/file_index"]))
        for key in self.video_keys:
            cols = [f"videos/{key}/{c}" for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")]
            missing = [c for c in cols if row.get(c) is None]
            if missing:
                ep.videos[key] = f"{where}: no {missing[0]} for camera {key} (episode {idx})"
                continue
            chunk, file, t0, t1 = (row[c] for c in cols)
            ep.videos[key] = VideoRef(self._template("video_path", video_key=key, chunk_index=chunk,
                                                     file_index=file), (float(t0), float(t1)))
        return ep

    def _template(self, name: str, **values) -> Path:
        template = self.info[name]
        try:
            return self.root / template.format(**values)
        except (KeyError, IndexError, ValueError) as e:
            raise LeRobotError(f"{self.root / 'meta' / 'info.json'}: {name} {template!r} cannot be filled "
                               f"({type(e).__name__}: {e}; have {', '.join(values)})") from None

    # --- frames --------------------------------------------------------------------------------------

    def task_indices(self, episodes: list[EpisodeMeta]) -> dict[int, list[int] | str]:
        """Per episode, the task_index values of its frames in order of first use, or why they cannot be
        read (the message names the data file and field). Each data file is read once, two columns only."""
        by_file: dict[Path, list[EpisodeMeta]] = {}
        for ep in episodes:
            by_file.setdefault(ep.data_file, []).append(ep)
        out: dict[int, list[int] | str] = {}
        for path, eps in by_file.items():
            try:
                table = _read_parquet(path, ["episode_index", "task_index"])
            except LeRobotError as e:
                for ep in eps:
                    out[ep.index] = f"{e} (frames of episode {ep.index})"
                continue
            ep_col = np.asarray(table.column("episode_index").to_numpy(zero_copy_only=False))
            task_col = table.column("task_index").to_numpy(zero_copy_only=False)
            for ep in eps:
                mask = ep_col == ep.index
                if not mask.any():
                    out[ep.index] = f"{path}: no frame of episode {ep.index} (column episode_index)"
                    continue
                values = task_col[mask]
                _, first = np.unique(values, return_index=True)
                out[ep.index] = [int(values[i]) for i in sorted(first)]
        return out

    def frames(self, ep: EpisodeMeta, columns: list[str] | None = None) -> dict[str, np.ndarray]:
        """The episode's rows of its data file, ordered by frame_index: column -> array ([T] or [T, D])."""
        names = _parquet_columns(ep.data_file)
        wanted = columns or [c for c in names if self.features.get(c, {}).get("dtype") not in ("video", "image")]
        table = _read_parquet(ep.data_file, sorted(set(wanted) | {"episode_index", "frame_index"}))
        mask = np.asarray(table.column("episode_index").to_numpy(zero_copy_only=False)) == ep.index
        order = np.argsort(np.asarray(table.column("frame_index").to_numpy(zero_copy_only=False))[mask], kind="stable")
        out = {}
        for name in wanted:
            col = table.column(name).to_pylist()
            arr = np.asarray([v for v, m in zip(col, mask) if m])
            out[name] = arr[order]
        return out

    def video_frames(self, ep: EpisodeMeta, key: str, timestamps: np.ndarray) -> np.ndarray:
        """Camera `key`'s frames at the episode's frame `timestamps` (seconds from its start), as LeRobot
        finds them: at from_timestamp + timestamp in the episode's video."""
        from roboact.data.video import read_frames_at

        ref = ep.videos.get(key)
        if not isinstance(ref, VideoRef):
            raise LeRobotError(ref or f"{ep.where}: no camera {key!r} (cameras: {', '.join(self.video_keys)})")
        offset = ref.time_range[0] if ref.time_range else 0.0
        return read_frames_at(ref.path, offset + np.asarray(timestamps, dtype=np.float64))


def _task_text_column(table) -> str | None:
    """Where tasks.parquet keeps the text: LeRobot writes a pandas frame indexed by it."""
    meta = table.schema.metadata or {}
    try:
        index_cols = json.loads(meta.get(b"pandas", b"{}")).get("index_columns", [])
    except (ValueError, AttributeError):
        index_cols = []
    for name in [c for c in index_cols if isinstance(c, str)] + ["task", "__index_level_0__"]:
        if name in table.column_names:
            return name
    return None


def _read_json_object(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LeRobotError(f"{path}: unreadable ({e})") from None
    if not isinstance(data, dict):
        raise LeRobotError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _read_jsonl(path: Path) -> list[tuple[int, dict]]:
    if not path.is_file():
        raise LeRobotError(f"{path}: file not found (a v2.x dataset lists its episodes and tasks in meta/*.jsonl)")
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise LeRobotError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise LeRobotError(f"{path}:{lineno}: expected a JSON object")
        rows.append((lineno, row))
    return rows


def _parquet_columns(path: Path) -> list[str]:
    pq = _pq()
    if not Path(path).is_file():
        raise LeRobotError(f"{path}: file not found")
    try:
        return list(pq.read_schema(path).names)
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError for truncated or foreign files
        raise LeRobotError(f"{path}: not a readable parquet file ({type(e).__name__}: {e})") from None


def _read_parquet(path: Path, columns: list[str] | None = None):
    pq = _pq()
    if columns is not None:
        have = _parquet_columns(path)
        missing = [c for c in columns if c not in have]
        if missing:
            raise LeRobotError(f"{path}: no column {missing[0]} (columns: {', '.join(have)})")
    elif not Path(path).is_file():
        raise LeRobotError(f"{path}: file not found")
    try:
        return pq.read_table(path, columns=columns)
    except Exception as e:
        raise LeRobotError(f"{path}: not a readable parquet file ({type(e).__name__}: {e})") from None
