"""RH20T as a curate source: one `SourceItem` per (episode, camera with a colour video).

Layout handled (docs/design.md §6):
    <root>/[RH20T_cfgK/]task_XXXX_user_XXXX_scene_XXXX_cfg_XXXX[_human]/
        metadata.json                 rating, finish_time, calib; human episodes: start_time, end_time
        cam_<serial>/color.mp4        or cam_<serial>/color/color.mp4; some cameras have neither
        cam_<serial>/timestamps.npy   colour-frame timestamps (ms)
    task_description.json             {"task_XXXX": {"task_description_english": ...}}, in <root> or its parent

Robot episodes give subject "Robot" (embodiment from the cfg number), `_human` folders give "Human".
Episodes rated below `min_rating` (RH20T's usual filter drops rating <= 1), episodes without metadata or
language, and cameras without a video become rejection rows; folders that are not episodes (calib/) are
skipped silently.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

from roboact.data.curate.items import Rejection, SourceItem, TrimSpec
from roboact.utils.io import read_json

log = logging.getLogger(__name__)
EPISODE_RE = re.compile(r"^task_(\d{4})_user_(\d{4})_scene_(\d{4})_cfg_(\d{4})(_human)?$")
CFG_ROBOT = {1: "flexiv", 2: "flexiv", 3: "ur5", 4: "ur5", 5: "franka", 6: "kuka", 7: "kuka"}
VIDEO_NAMES = ("color.mp4", "color/color.mp4")


def scan_rh20t(root: Path, descriptions: Path | None = None,
               min_rating: int = 2) -> tuple[list[SourceItem], list[Rejection]]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: RH20T root folder not found")
    language = load_descriptions(find_descriptions(root, descriptions))
    episodes = find_episodes(root)
    if not episodes:
        raise ValueError(f"{root}: no RH20T episode folders (task_XXXX_user_XXXX_scene_XXXX_cfg_XXXX[_human]) "
                         "here or in RH20T_cfg*/ below it")
    items: list[SourceItem] = []
    rejections: list[Rejection] = []
    for ep in episodes:
        got, rej = scan_episode(ep, language, min_rating)
        items += got
        rejections += rej
    log.info("RH20T %s: %d episodes, %d camera videos, %d rejected at the source",
             root, len(episodes), len(items), len(rejections))
    return items, rejections


def find_descriptions(root: Path, given: Path | None) -> Path:
    tried = [Path(given)] if given else [root / "task_description.json", root.parent / "task_description.json"]
    for p in tried:
        if p.is_file():
            return p
    raise FileNotFoundError(f"task_description.json not found (tried {', '.join(map(str, tried))}); "
                            "pass --descriptions")


def load_descriptions(path: Path) -> dict[str, str]:
    """task_XXXX -> English instruction. Entries without an English text are left out (rejected later)."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object keyed by task_XXXX, got {type(data).__name__}")
    out = {}
    for task, entry in data.items():
        text = entry.get("task_description_english") if isinstance(entry, dict) else entry
        if isinstance(text, str) and text.strip():
            out[task] = text
    return out


def find_episodes(root: Path) -> list[Path]:
    parents = [root, *sorted(p for p in root.glob("RH20T_cfg*") if p.is_dir())]
    return sorted({p for parent in parents for p in parent.iterdir() if p.is_dir() and EPISODE_RE.match(p.name)},
                  key=lambda p: (p.name, str(p)))


def scan_episode(ep: Path, language: dict[str, str], min_rating: int) -> tuple[list[SourceItem], list[Rejection]]:
    m = EPISODE_RE.match(ep.name)
    task, cfg, human = f"task_{m.group(1)}", int(m.group(4)), bool(m.group(5))
    meta, problem = _metadata(ep, min_rating)
    if problem is not None:
        return [], [dataclasses.replace(problem, instruction=language.get(task, ""))]
    if task not in language:
        return [], [Rejection(ep.name, str(ep), "source", "no_language",
                              f"task_description.json has no task_description_english for {task}")]
    cams = sorted(p for p in ep.glob("cam_*") if p.is_dir())
    if not cams:
        return [], [Rejection(ep.name, str(ep), "source", "no_video", "episode has no cam_<serial> folders")]
    items, rejections = [], []
    extra = {"episode": ep.name, "cfg": cfg, "user": int(m.group(2)), "scene": int(m.group(3)),
             "rating": meta.get("rating"), "finish_time": meta.get("finish_time")}
    for cam in cams:
        video = next((cam / n for n in VIDEO_NAMES if (cam / n).is_file()), None)
        clip_id = f"{ep.name}__{cam.name}"
        if video is None:
            rejections.append(Rejection(clip_id, str(cam), "source", "no_video",
                                        f"camera has no colour video ({' or '.join(VIDEO_NAMES)})", language[task]))
            continue
        items.append(SourceItem(
            clip_id=clip_id, video=video.resolve(), instruction=language[task],
            subject="Human" if human else "Robot", origin=str(ep), task=task, camera=cam.name[len("cam_"):],
            embodiment="human" if human else CFG_ROBOT.get(cfg, f"cfg{cfg}"), source="rh20t",
            trim=_trim(meta, cam) if human else None, extra=dict(extra)))
    return items, rejections


def _metadata(ep: Path, min_rating: int) -> tuple[dict, Rejection | None]:
    try:
        meta = read_json(ep / "metadata.json")
    except (FileNotFoundError, ValueError) as e:
        return {}, Rejection(ep.name, str(ep), "source", "bad_metadata", str(e))
    if not isinstance(meta, dict):
        return {}, Rejection(ep.name, str(ep), "source", "bad_metadata", "metadata.json is not an object")
    rating = meta.get("rating")
    if rating is None:
        return meta, None  # not every release rates every episode: keep, and say so in the row's extra
    if isinstance(rating, bool) or not isinstance(rating, (int, float)):
        return meta, Rejection(ep.name, str(ep), "source", "bad_metadata", f"rating is not a number: {rating!r}")
    if rating < min_rating:
        return meta, Rejection(ep.name, str(ep), "source", "low_rating", f"rating {rating} < min_rating {min_rating}")
    return meta, None


def _trim(meta: dict, cam: Path) -> TrimSpec | None:
    start, end = meta.get("start_time"), meta.get("end_time")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (start, end)):
        return None
    ts = cam / "timestamps.npy"
    return TrimSpec(int(start), int(end), ts if ts.is_file() else None)
