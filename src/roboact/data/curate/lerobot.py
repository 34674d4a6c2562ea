"""A local LeRobot dataset (v2.0, v2.1, v3.0) as a curate source: one `SourceItem` per (episode, camera).

The instruction is the episode's task text: the task_index values of its frames looked up in meta/tasks
(what LeRobot's loader hands a policy as `task`); an episode whose frames use several tasks gets them
joined with ". ", so Algorithm 1 sees every action and rejects the episode as multi-action. A v3.0 clip is
the stretch [from_timestamp, to_timestamp) of its camera's shared mp4 (`SourceItem.time_range`); the
pipeline checks it against the file and `roboact extract` decodes only that stretch. A v2.x clip is its
own file.

Rejected with the file and field named, the rest still curated: a camera whose video file is missing or
whose columns are missing from the episodes table (`no_video`), an episode whose frames cannot be read
(`bad_metadata`), a task_index with no task in meta/tasks (`no_language`). A folder that is not a LeRobot
dataset, an unsupported codebase_version, an unknown --cameras key or --episodes index stop the run with
an error naming the file and field.
"""
from __future__ import annotations

import logging
from pathlib import Path

from roboact.data.curate.items import Rejection, SourceItem
from roboact.data.lerobot.dataset import EpisodeMeta, LeRobotDataset, LeRobotError, VideoRef

log = logging.getLogger(__name__)


def scan_lerobot(root: Path, cameras: list[str] | None = None, episodes: list[int] | None = None,
                 subject: str = "Robot") -> tuple[list[SourceItem], list[Rejection]]:
    ds = LeRobotDataset(root)
    keys = select_cameras(ds, cameras or [])
    eps = ds.episodes(episodes or None)
    task_ids = ds.task_indices(eps)
    items: list[SourceItem] = []
    rejections: list[Rejection] = []
    for ep in eps:
        got, rej = _episode_items(ds, ep, keys, task_ids[ep.index], subject)
        items += got
        rejections += rej
    log.info("LeRobot %s (%s): %d episodes x %d cameras -> %d clips, %d rejected at the source",
             ds.root, ds.version, len(eps), len(keys), len(items), len(rejections))
    return items, rejections


def select_cameras(ds: LeRobotDataset, wanted: list[str]) -> list[str]:
    """The dataset's camera keys, or those named (full key or the part after 'observation.images.')."""
    if not ds.video_keys:
        raise LeRobotError(f"{ds.root / 'meta' / 'info.json'}: no feature with dtype 'video' (cameras stored "
                           "as images are not supported)")
    if not wanted:
        return list(ds.video_keys)
    short = {k.removeprefix("observation.images."): k for k in ds.video_keys}
    out = []
    for name in wanted:
        key = name if name in ds.video_keys else short.get(name)
        if key is None:
            raise LeRobotError(f"--cameras {name!r}: no such camera in {ds.root / 'meta' / 'info.json'} "
                               f"(cameras: {', '.join(ds.video_keys)})")
        if key not in out:
            out.append(key)
    return out


def clip_id(ds: LeRobotDataset, ep: EpisodeMeta, key: str) -> str:
    return f"{ds.root.name}__episode_{ep.index:06d}__{key}"


def _episode_items(ds: LeRobotDataset, ep: EpisodeMeta, keys: list[str], task_ids: list[int] | str,
                   subject: str) -> tuple[list[SourceItem], list[Rejection]]:
    ids = {key: clip_id(ds, ep, key) for key in keys}
    if isinstance(task_ids, str):   # its frames could not be read
        return [], [Rejection(ids[k], str(ep.data_file), "source", "bad_metadata", task_ids) for k in keys]
    unknown = [t for t in task_ids if t not in ds.tasks]
    if unknown:
        reason = (f"{ep.data_file}: task_index {unknown[0]} of episode {ep.index} has no task in meta/"
                  f"{'tasks.parquet' if ds.v3 else 'tasks.jsonl'} (known task_index: "
                  f"{', '.join(map(str, sorted(ds.tasks)[:10]))})")
        return [], [Rejection(ids[k], str(ep.data_file), "source", "no_language", reason) for k in keys]
    texts = [ds.tasks[t].strip() for t in task_ids]
    instruction = ". ".join(t.rstrip(".") for t in texts if t) if len(texts) > 1 else texts[0]
    items, rejections = [], []
    for key in keys:
        ref = ep.videos.get(key)
        if isinstance(ref, str):
            rejections.append(Rejection(ids[key], ep.where, "source", "no_video", ref, instruction))
            continue
        if not ref.path.is_file():
            rejections.append(Rejection(ids[key], str(ref.path), "source", "no_video",
                                        f"{ref.path}: video file not found (episode {ep.index}, camera {key})",
                                        instruction))
            continue
        items.append(_item(ds, ep, key, ref, ids[key], instruction, task_ids, subject))
    return items, rejections


def _item(ds: LeRobotDataset, ep: EpisodeMeta, key: str, ref: VideoRef, cid: str, instruction: str,
          task_ids: list[int], subject: str) -> SourceItem:
    extra = {"dataset": ds.root.name, "codebase_version": ds.version, "episode_index": ep.index,
             "task_index": task_ids, "length": ep.length}
    return SourceItem(clip_id=cid, video=ref.path.resolve(), instruction=instruction, subject=subject,
                      origin=ep.where, task=" | ".join(ds.tasks[t] for t in task_ids), camera=key,
                      embodiment=ds.robot_type, source="lerobot", time_range=ref.time_range, extra=extra)
