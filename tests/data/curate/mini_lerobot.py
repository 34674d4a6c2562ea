"""Tiny LeRobot datasets (v3.0 and v2.1) built by hand with pyarrow and real mp4s, laid out as LeRobot
writes them, independent of roboact's own LeRobot writer.

Three episodes, two cameras. Every frame of episode i on camera `top` is the solid colour COLOURS[i]
(`wrist`: its complement), so a decoded frame tells which episode it came from. Episode 1's task has two
actions. v3.0 keeps episodes 0-1 in file-000 and episode 2 in file-001 of each camera, so from/to
timestamps and file indices both matter.

    python -m tests.data.curate.mini_lerobot DIR    # writes DIR/v30 and DIR/v21
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

FPS = 10
LENGTHS = (6, 8, 5)
COLOURS = ((220, 30, 30), (30, 200, 30), (30, 30, 220))
TASKS = ("open the drawer", "pick up the cup and place it on the plate", "close the drawer")
CAMERAS = ("observation.images.top", "observation.images.wrist")
SIZE = (24, 32)
V3_FILE_OF_EPISODE = (0, 0, 1)


def frames(episode: int, camera: str) -> np.ndarray:
    colour = np.array(COLOURS[episode], np.uint8)
    if camera.endswith("wrist"):
        colour = 255 - colour
    return np.broadcast_to(colour, (LENGTHS[episode], *SIZE, 3)).copy()


def actions(episode: int) -> np.ndarray:
    return np.arange(LENGTHS[episode] * 2, dtype=np.float32).reshape(-1, 2) + 100 * episode


def _features(video_path: str, data_path: str, version: str) -> dict:
    feats = {cam: {"dtype": "video", "shape": [*SIZE, 3], "names": ["height", "width", "channels"]}
             for cam in CAMERAS}
    feats.update({
        "action": {"dtype": "float32", "shape": [2], "names": None},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
    })
    return {"codebase_version": version, "robot_type": "so100", "fps": FPS, "chunks_size": 1000,
            "total_episodes": len(LENGTHS), "total_frames": sum(LENGTHS), "total_tasks": len(TASKS),
            "data_path": data_path, "video_path": video_path, "features": feats}


def _frame_table(episodes: list[int]):
    import pyarrow as pa

    rows = {"action": [], "timestamp": [], "frame_index": [], "episode_index": [], "index": [], "task_index": []}
    for ep in episodes:
        start = sum(LENGTHS[:ep])
        for f in range(LENGTHS[ep]):
            rows["action"].append(actions(ep)[f].tolist())
            rows["timestamp"].append(f / FPS)
            rows["frame_index"].append(f)
            rows["episode_index"].append(ep)
            rows["index"].append(start + f)
            rows["task_index"].append(ep)
    return pa.table({"action": pa.array(rows["action"], pa.list_(pa.float32(), 2)),
                     "timestamp": pa.array(rows["timestamp"], pa.float32()),
                     **{k: pa.array(rows[k], pa.int64()) for k in ("frame_index", "episode_index", "index",
                                                                     "task_index")}})


def build_v30(root: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from roboact.data.video import write_mp4

    root = Path(root)
    info = _features("videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
                     "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet", "v3.0")
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    pq.write_table(pa.table({"task_index": pa.array(range(len(TASKS)), pa.int64()), "task": list(TASKS)}),
                   root / "meta" / "tasks.parquet")
    (root / "data" / "chunk-000").mkdir(parents=True)
    pq.write_table(_frame_table([0, 1, 2]), root / "data" / "chunk-000" / "file-000.parquet")
    rows = []
    for ep in range(len(LENGTHS)):
        rows.append({"episode_index": ep, "tasks": [TASKS[ep]], "length": LENGTHS[ep],
                     "data/chunk_index": 0, "data/file_index": 0,
                     "dataset_from_index": sum(LENGTHS[:ep]), "dataset_to_index": sum(LENGTHS[:ep + 1])})
    for cam in CAMERAS:
        for file in sorted(set(V3_FILE_OF_EPISODE)):
            eps = [e for e, f in enumerate(V3_FILE_OF_EPISODE) if f == file]
            write_mp4(root / "videos" / cam / "chunk-000" / f"file-{file:03d}.mp4",
                      np.concatenate([frames(e, cam) for e in eps]), fps=FPS)
            start = 0
            for e in eps:
                rows[e].update({f"videos/{cam}/chunk_index": 0, f"videos/{cam}/file_index": file,
                                f"videos/{cam}/from_timestamp": start / FPS,
                                f"videos/{cam}/to_timestamp": (start + LENGTHS[e]) / FPS})
                start += LENGTHS[e]
    table = pa.Table.from_pylist(rows)
    stats = pa.array([[0.0, 1.0]] * len(rows), pa.list_(pa.float64()))  # LeRobot keeps per-episode stats here
    pq.write_table(table.append_column("stats/action/mean", stats),
                   root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    return root


def build_v21(root: Path) -> Path:
    import pyarrow.parquet as pq

    from roboact.data.video import write_mp4

    root = Path(root)
    info = _features("videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4",
                     "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet", "v2.1")
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    (root / "meta" / "tasks.jsonl").write_text(
        "".join(json.dumps({"task_index": i, "task": t}) + "\n" for i, t in enumerate(TASKS)))
    (root / "meta" / "episodes.jsonl").write_text("".join(
        json.dumps({"episode_index": e, "tasks": [TASKS[e]], "length": n}) + "\n" for e, n in enumerate(LENGTHS)))
    (root / "data" / "chunk-000").mkdir(parents=True)
    for ep in range(len(LENGTHS)):
        pq.write_table(_frame_table([ep]), root / "data" / "chunk-000" / f"episode_{ep:06d}.parquet")
        for cam in CAMERAS:
            write_mp4(root / "videos" / "chunk-000" / cam / f"episode_{ep:06d}.mp4", frames(ep, cam), fps=FPS)
    return root


if __name__ == "__main__":
    out = Path(sys.argv[1])
    print(build_v30(out / "v30"), build_v21(out / "v21"))
