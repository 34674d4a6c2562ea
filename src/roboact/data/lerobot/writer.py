"""Write a LeRobot v3.0 dataset: the layout LeRobot's own `LeRobotDataset(repo_id, root=DIR)` loads.

What goes where (as lerobot/datasets/lerobot_dataset.py writes it):

    meta/info.json                         codebase_version "v3.0", fps, features, path templates, totals
    meta/tasks.parquet                     task_index with the task text as the (pandas) index
    meta/episodes/chunk-000/file-000.parquet   one row per episode: tasks, length, data and video file
                                           indices, dataset_from/to_index, videos/<key>/from/to_timestamp
    meta/stats.json                        min/max/mean/std/count per feature; cameras per channel, in [0, 1]
    data/chunk-000/file-000.parquet        one row per frame: the features, timestamp, frame_index,
                                           episode_index, index, task_index
    videos/<key>/chunk-000/file-000.mp4    every episode of a camera back to back (H.264, key frame every
                                           2 frames as LeRobot encodes, no B-frames)

Everything goes in chunk-000/file-000: LeRobot's 100/200 MB file sizes are where its recorder starts a new
file, not something its loader requires. The dataset is built in a hidden folder beside the destination and
renamed into place when complete, so a crash never leaves a half-written dataset where a finished one is
expected.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from roboact.data.lerobot.dataset import LeRobotError, _pq
from roboact.utils.io import atomic_write_json

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
VIDEO_GOP = 2
VIDEO_CRF = 20
# LeRobot's bookkeeping columns, present in every dataset (lerobot/datasets/utils.py DEFAULT_FEATURES)
DEFAULT_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}


@dataclass
class _Stats:
    """Running min/max/mean/std over the first axis (or, for images, per channel over frames and pixels)."""
    count: int = 0
    total: np.ndarray | float = 0.0
    total_sq: np.ndarray | float = 0.0
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None

    def add(self, x: np.ndarray, axes: tuple[int, ...], n: int) -> None:
        x = x.astype(np.float64)
        self.count += n
        self.total = self.total + x.sum(axis=axes)
        self.total_sq = self.total_sq + (x * x).sum(axis=axes)
        lo, hi = x.min(axis=axes), x.max(axis=axes)
        self.lo = lo if self.lo is None else np.minimum(self.lo, lo)
        self.hi = hi if self.hi is None else np.maximum(self.hi, hi)

    def to_json(self, values_per_item: int, shape: tuple[int, ...]) -> dict:
        m = self.total / (self.count * values_per_item)
        std = np.sqrt(np.maximum(self.total_sq / (self.count * values_per_item) - m * m, 0.0))
        return {"min": self.lo.reshape(shape).tolist(), "max": self.hi.reshape(shape).tolist(),
                "mean": np.asarray(m).reshape(shape).tolist(), "std": np.asarray(std).reshape(shape).tolist(),
                "count": [self.count]}


@dataclass
class _Episode:
    index: int
    length: int
    task: str
    from_index: int
    video_from: dict[str, int] = field(default_factory=dict)   # camera -> frames before it in the file


class LeRobotWriter:
    """Episodes in, a v3.0 dataset out. Use as a context manager:

        with LeRobotWriter(out, fps=20, features={"observation.state": {...}, "action": {...}},
                           cameras=["observation.images.agentview"], robot_type="panda") as w:
            w.add_episode({"observation.state": s, "action": a}, {"observation.images.agentview": rgb}, task)

    `features` maps a name to {"dtype": "float32"|"int64"|"bool", "shape": [D], "names": [...] | None};
    each episode gives an array [T] or [T, D] per feature and uint8 frames [T, H, W, 3] per camera.
    """

    def __init__(self, root: str | Path, fps: int, features: dict[str, dict], cameras: list[str],
                 robot_type: str = "", extra_info: dict | None = None):
        if int(fps) != fps or fps <= 0:
            raise LeRobotError(f"fps must be a positive integer for LeRobot, got {fps!r}")
        clash = set(features) & (set(DEFAULT_FEATURES) | set(cameras))
        if clash:
            raise LeRobotError(f"feature names {sorted(clash)} are LeRobot's own columns or cameras")
        self.root, self.fps, self.robot_type = Path(root), int(fps), robot_type
        self.features = {k: {**v, "shape": list(v["shape"])} for k, v in features.items()}
        self.cameras = list(cameras)
        self.extra_info = dict(extra_info or {})
        self.tasks: dict[str, int] = {}
        self.episodes: list[_Episode] = []
        self.total_frames = 0
        self._stats = {k: _Stats() for k in [*self.features, *self.cameras, *DEFAULT_FEATURES]}
        self._sizes: dict[str, tuple[int, int]] = {}

    # --- lifecycle -----------------------------------------------------------------------------------

    def __enter__(self) -> "LeRobotWriter":
        from roboact.data.video import Mp4Writer

        self.root.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.root.name}.", suffix=".tmp", dir=self.root.parent))
        try:
            self._videos = {}
            for key in self.cameras:
                w = Mp4Writer(self._tmp / VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0),
                              fps=self.fps, crf=VIDEO_CRF, gop=VIDEO_GOP)
                self._videos[key] = w.__enter__()
            self._data_path = self._tmp / DATA_PATH.format(chunk_index=0, file_index=0)
            self._data_path.parent.mkdir(parents=True, exist_ok=True)
            self._data = None
        except BaseException:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            for w in self._videos.values():
                w.__exit__(exc_type, exc, tb)
            if self._data is not None:
                self._data.close()
            if exc_type is None:
                if not self.episodes:
                    raise LeRobotError(f"{self.root}: no episode to write")
                self._write_meta()
                self._replace()
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _replace(self) -> None:
        """Swap the finished folder in; an older dataset there is moved aside first and then deleted."""
        old = None
        if self.root.exists():
            old = self.root.with_name(f".{self.root.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            self.root.rename(old)
        self._tmp.rename(self.root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    # --- episodes ------------------------------------------------------------------------------------

    def add_episode(self, values: dict[str, np.ndarray], images: dict[str, np.ndarray], task: str) -> int:
        """Append one episode; returns its episode_index."""
        index = len(self.episodes)
        where = f"episode {index}"
        if set(values) != set(self.features):
            raise LeRobotError(f"{where}: features {sorted(values)} differ from the dataset's {sorted(self.features)}")
        if set(images) != set(self.cameras):
            raise LeRobotError(f"{where}: cameras {sorted(images)} differ from the dataset's {sorted(self.cameras)}")
        if not isinstance(task, str) or not task.strip():
            raise LeRobotError(f"{where}: task must be non-empty text, got {task!r}")
        arrays = {k: self._check_feature(k, np.asarray(v), where) for k, v in values.items()}
        lengths = {len(a) for a in arrays.values()} | {len(im) for im in images.values()}
        if len(lengths) != 1:
            raise LeRobotError(f"{where}: features and cameras differ in length ({sorted(lengths)} frames)")
        t = lengths.pop()
        if t < 1:
            raise LeRobotError(f"{where}: no frames")
        task_index = self.tasks.setdefault(task, len(self.tasks))
        frame_index = np.arange(t, dtype=np.int64)
        book = {"timestamp": (frame_index / self.fps).astype(np.float32), "frame_index": frame_index,
                "episode_index": np.full(t, index, np.int64),
                "index": np.arange(self.total_frames, self.total_frames + t, dtype=np.int64),
                "task_index": np.full(t, task_index, np.int64)}
        ep = _Episode(index, t, task, self.total_frames)
        for key, frames in images.items():
            frames = np.asarray(frames)
            if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
                raise LeRobotError(f"{where}: camera {key} frames must be uint8 [T, H, W, 3], got "
                                   f"{frames.dtype} {frames.shape}")
            size = self._sizes.setdefault(key, frames.shape[1:3])
            if frames.shape[1:3] != size:
                raise LeRobotError(f"{where}: camera {key} frames are {frames.shape[1:3]}, earlier ones {size}")
            ep.video_from[key] = self._videos[key].num_frames
            self._videos[key].add(frames)
            self._stats[key].add(frames / 255.0, (0, 1, 2), t)
        self._write_rows({**arrays, **book})
        for k, a in {**arrays, **book}.items():
            self._stats[k].add(a.reshape(t, -1), (0,), t)
        self.episodes.append(ep)
        self.total_frames += t
        return index

    def _check_feature(self, key: str, a: np.ndarray, where: str) -> np.ndarray:
        spec = self.features[key]
        shape = tuple(spec["shape"])
        if a.ndim == 1 and shape == (1,):
            a = a[:, None]
        if a.shape[1:] != shape:
            raise LeRobotError(f"{where}: feature {key} has shape {a.shape[1:]} per frame, expected {shape}")
        try:
            return a.astype(spec["dtype"])
        except TypeError:
            raise LeRobotError(f"{where}: feature {key}: unsupported dtype {spec['dtype']!r}") from None

    def _write_rows(self, columns: dict[str, np.ndarray]) -> None:
        import pyarrow as pa

        arrays, names = [], []
        for name in [*self.features, *DEFAULT_FEATURES]:
            a = columns[name]
            spec = self.features.get(name) or DEFAULT_FEATURES[name]
            if list(spec["shape"]) == [1]:
                arrays.append(pa.array(a.reshape(-1)))
            else:  # what `datasets.Sequence(length=D)` stores: a fixed-size list
                arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1)), a.shape[1]))
            names.append(name)
        table = pa.Table.from_arrays(arrays, names=names)
        if self._data is None:
            self._data = _pq().ParquetWriter(self._data_path, table.schema, compression="snappy")
        self._data.write_table(table)

    # --- metadata ------------------------------------------------------------------------------------

    def _write_meta(self) -> None:
        import pyarrow as pa

        pq = _pq()
        meta = self._tmp / "meta"
        (meta / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
        rows = []
        for ep in self.episodes:
            row = {"episode_index": ep.index, "tasks": [ep.task], "length": ep.length,
                   "data/chunk_index": 0, "data/file_index": 0,
                   "dataset_from_index": ep.from_index, "dataset_to_index": ep.from_index + ep.length}
            for key in self.cameras:
                row.update({f"videos/{key}/chunk_index": 0, f"videos/{key}/file_index": 0,
                            f"videos/{key}/from_timestamp": ep.video_from[key] / self.fps,
                            f"videos/{key}/to_timestamp": (ep.video_from[key] + ep.length) / self.fps})
            row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
            rows.append(row)
        pq.write_table(pa.Table.from_pylist(rows), self._tmp / EPISODES_PATH)
        pq.write_table(_tasks_table(self.tasks), meta / "tasks.parquet")
        atomic_write_json(meta / "info.json", self._info())
        atomic_write_json(meta / "stats.json", self._stats_json())

    def _info(self) -> dict:
        features = {}
        for key in self.cameras:
            h, w = self._sizes[key]
            h, w = h + h % 2, w + w % 2  # Mp4Writer pads odd sizes
            features[key] = {"dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
                             "info": {"video.height": h, "video.width": w, "video.codec": "h264",
                                      "video.pix_fmt": "yuv420p", "video.is_depth_map": False,
                                      "video.fps": self.fps, "video.channels": 3, "has_audio": False}}
        for key, spec in {**self.features, **DEFAULT_FEATURES}.items():
            features[key] = {**spec, "fps": self.fps}
        n = len(self.episodes)
        return {"codebase_version": CODEBASE_VERSION, "robot_type": self.robot_type or None,
                "total_episodes": n, "total_frames": self.total_frames, "total_tasks": len(self.tasks),
                "chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200,
                "fps": self.fps, "splits": {"train": f"0:{n}"}, "data_path": DATA_PATH,
                "video_path": VIDEO_PATH if self.cameras else None, "features": features, **self.extra_info}

    def _stats_json(self) -> dict:
        out = {}
        for key, st in self._stats.items():
            if key in self.cameras:
                out[key] = st.to_json(int(np.prod(self._sizes[key])), (3, 1, 1))
            else:
                spec = self.features.get(key) or DEFAULT_FEATURES[key]
                out[key] = st.to_json(1, tuple(spec["shape"]))
        return out


def _tasks_table(tasks: dict[str, int]):
    """tasks.parquet as pandas writes `DataFrame({"task_index": ...}, index=texts)`, which is what LeRobot
    reads back with `pd.read_parquet` (the text becomes the index: `tasks.loc[text].task_index`)."""
    import pyarrow as pa

    texts = list(tasks)
    table = pa.Table.from_arrays([pa.array([tasks[t] for t in texts], pa.int64()), pa.array(texts, pa.string())],
                                 names=["task_index", "__index_level_0__"])
    pandas_meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                            "metadata": {"encoding": "UTF-8"}}],
        "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                     "numpy_type": "int64", "metadata": None},
                    {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode",
                     "numpy_type": "object", "metadata": None}],
        "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.3"}
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
