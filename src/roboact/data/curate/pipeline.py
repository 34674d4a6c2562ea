"""`curate`: the paper's Algorithm 1 over a dataset of videos + instructions.

scan source -> check instructions -> drop duplicate ids -> annotate each distinct instruction once ->
reject multi-action (and verb/object-less) texts -> count the frames of the kept videos -> write
manifest.jsonl (ClipRecord rows, captions from the paper's template), rejections.jsonl, pending.jsonl,
summary.json + summary.md (Table I). Every output is rewritten atomically from the whole run, so the output
folder always holds one consistent snapshot; the LLM answers and frame counts live in SQLite caches in that
folder, which is what makes a rerun (or a run after a crash) cheap.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from roboact.data.captions import atomic_caption
from roboact.data.curate.annotate_llm import LLMConfig
from roboact.data.curate.annotation import Action, Annotation, Annotator, judge
from roboact.data.curate.items import Pending, Rejection, SourceItem
from roboact.data.curate.probe import ProbeCache
from roboact.data.curate.summary import CurateSummary, summarize
from roboact.data.curate.timestamps import TimestampError, frame_window
from roboact.data.manifest import ClipRecord, ManifestError
from roboact.data.video import VideoError
from roboact.utils.config import check
from roboact.utils.io import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)


@dataclass
class CurateConfig:
    source: Literal["rh20t", "manifest", "lerobot"]
    input: str                                   # RH20T root, a CSV/JSONL video list, or a LeRobot dataset
    out_dir: str
    annotator: Literal["rules", "llm"] = "rules"
    llm: LLMConfig = field(default_factory=LLMConfig)
    descriptions: str = ""                       # RH20T task_description.json (default: searched)
    min_rating: int = 2                          # RH20T: episodes rated below are dropped
    cameras: list[str] = field(default_factory=list)   # LeRobot: camera keys to use (empty: all)
    episodes: list[int] = field(default_factory=list)  # LeRobot: episode indices to use (empty: all)
    default_subject: str = "Robot"               # video lists without a subject column
    max_instruction_chars: int = 1000
    workers: int = 2                             # threads counting frames
    absolute_paths: bool = False                 # manifest paths absolute instead of relative to out_dir
    progress: bool = True

    def __post_init__(self) -> None:
        check(self.source in ("rh20t", "manifest", "lerobot"), "source",
              f"must be 'rh20t', 'manifest' or 'lerobot', got {self.source!r}")
        check(self.annotator in ("rules", "llm"), "annotator", f"must be 'rules' or 'llm', got {self.annotator!r}")
        check(bool(str(self.input).strip()), "input", "must name the dataset root or the video list")
        check(bool(str(self.out_dir).strip()), "out_dir", "must name an output folder")
        check(bool(self.default_subject.strip()), "default_subject", "must be non-empty (e.g. Robot)")
        check(self.max_instruction_chars >= 1, "max_instruction_chars",
              f"must be >= 1, got {self.max_instruction_chars}")
        check(self.workers >= 1, "workers", f"must be >= 1, got {self.workers}")
        check(all(e >= 0 for e in self.episodes), "episodes", f"must be episode indices >= 0, got {self.episodes}")
        for name in ("cameras", "episodes"):
            check(self.source == "lerobot" or not getattr(self, name), name,
                  f"applies to a LeRobot dataset only (source 'lerobot'), not {self.source!r}")


@dataclass
class CurateResult:
    records: list[ClipRecord]
    rejections: list[Rejection]
    pending: list[Pending]
    summary: CurateSummary
    out_dir: Path


def curate(cfg: CurateConfig) -> CurateResult:
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "curate_config.json", public_config(cfg))
    items, rejections = scan(cfg)
    items, rej = check_instructions(items, cfg.max_instruction_chars)
    rejections += rej
    items, rej = drop_duplicate_ids(items)   # after the checks: a broken row never shadows a good one
    rejections += rej
    annotator = make_annotator(cfg, out)
    try:
        accepted, rej, pending = annotate(items, annotator)
    finally:
        annotator.close()
    rejections += rej
    records, rej = probe(accepted, out, cfg, annotator.name)
    rejections += rej
    summary = summarize(records, rejections, pending, cfg.source, annotator.name, getattr(annotator, "stats", {}))
    from roboact.utils import shutdown

    with shutdown.deferred():  # the outputs are one snapshot: a stop waits for the last file of the set
        write_outputs(out, records, rejections, pending, summary)
    return CurateResult(records, rejections, pending, summary, out)


def public_config(cfg: CurateConfig) -> dict:
    d = dataclasses.asdict(cfg)
    d["llm"].pop("api_key", None)  # the key never lands on disk
    return d


def scan(cfg: CurateConfig) -> tuple[list[SourceItem], list[Rejection]]:
    if cfg.source == "rh20t":
        from roboact.data.curate.rh20t import scan_rh20t
        return scan_rh20t(Path(cfg.input), Path(cfg.descriptions) if cfg.descriptions else None, cfg.min_rating)
    if cfg.source == "lerobot":
        from roboact.data.curate.lerobot import scan_lerobot
        return scan_lerobot(Path(cfg.input), cfg.cameras, cfg.episodes, cfg.default_subject)
    from roboact.data.curate.generic import scan_manifest
    return scan_manifest(Path(cfg.input), cfg.default_subject)


def drop_duplicate_ids(items: list[SourceItem]) -> tuple[list[SourceItem], list[Rejection]]:
    """Keep the first item of each clip id; later ones are rejected naming where the first came from."""
    first: dict[str, SourceItem] = {}
    kept, rejections = [], []
    for it in items:
        if it.clip_id in first:
            rejections.append(Rejection.of(it, "source", "duplicate_id",
                                           f"duplicate clip_id {it.clip_id!r} (first at {first[it.clip_id].origin})"))
        else:
            first[it.clip_id] = it
            kept.append(it)
    return kept, rejections


def check_instructions(items: list[SourceItem], max_chars: int) -> tuple[list[SourceItem], list[Rejection]]:
    """Whitespace-normalise instructions; reject empty, non-UTF-8 (replacement chars) and over-long ones."""
    kept, rejections = [], []
    for it in items:
        text = " ".join(it.instruction.split())
        reason = ""
        if not text:
            reason = "empty instruction"
        elif "\ufffd" in text or any("\ud800" <= ch <= "\udfff" for ch in text):
            reason = "instruction is not valid UTF-8"
        elif len(text) > max_chars:
            reason = f"instruction too long ({len(text)} characters > max_instruction_chars {max_chars})"
        if reason:
            rejections.append(Rejection(it.clip_id, str(it.video), "instruction", "bad_instruction", reason,
                                        text[:200]))
        else:
            kept.append(dataclasses.replace(it, instruction=text))
    return kept, rejections


def make_annotator(cfg: CurateConfig, out: Path) -> Annotator:
    if cfg.annotator == "rules":
        from roboact.data.curate.annotate_rules import RuleAnnotator
        return RuleAnnotator()
    from roboact.data.curate.annotate_llm import LLMAnnotator
    from roboact.data.curate.llm_cache import LLMCache
    cache = LLMCache(cfg.llm.cache_path or out / "llm_cache.sqlite")
    return LLMAnnotator(cfg.llm, cache, progress=cfg.progress)


def annotate(items: list[SourceItem], annotator: Annotator
             ) -> tuple[list[tuple[SourceItem, Action]], list[Rejection], list[Pending]]:
    """Algorithm 1, lines 4-9, once per distinct instruction (RH20T repeats each task's text ~1000 times)."""
    outcomes = annotator.annotate_all([it.instruction for it in items])
    accepted, rejections, pending = [], [], []
    for it in items:
        out = outcomes[it.instruction]
        if isinstance(out, Annotation):
            verdict = judge(out)
            if verdict.accepted:
                accepted.append((it, verdict.action))
            else:
                rejections.append(Rejection.of(it, "annotate", verdict.code, verdict.reason))
        elif out.pending:
            pending.append(Pending(it.clip_id, str(it.video), it.instruction, out.reason))
        else:
            rejections.append(Rejection.of(it, "annotate", out.code, out.reason))
    return accepted, rejections, pending


def probe(accepted: list[tuple[SourceItem, Action]], out: Path, cfg: CurateConfig,
          annotator: str) -> tuple[list[ClipRecord], list[Rejection]]:
    """Count frames (cached) and build the manifest rows, in source order; unreadable videos are rejected."""
    from tqdm import tqdm

    cache = ProbeCache(out / "probe_cache.sqlite")
    try:
        with ThreadPoolExecutor(max_workers=cfg.workers) as pool:
            futures = [pool.submit(_record, pair, cache, out, cfg, annotator) for pair in accepted]
            try:
                results = [f.result() for f in tqdm(futures, desc="count frames", unit="video",
                                                    disable=not cfg.progress)]
            except BaseException:  # Ctrl-C: counts done so far are in the cache; drop the queued work
                for f in futures:
                    f.cancel()
                raise
    finally:
        cache.close()
    records = [r for r in results if isinstance(r, ClipRecord)]
    return records, [r for r in results if isinstance(r, Rejection)]


def _record(pair: tuple[SourceItem, Action], cache: ProbeCache, out: Path, cfg: CurateConfig,
            annotator: str) -> ClipRecord | Rejection:
    it, action = pair
    try:
        info = cache.probe(it.video)
    except VideoError as e:
        return Rejection.of(it, "video", "unreadable_video", str(e))
    extra = {**it.extra, "annotator": annotator}
    num_frames = info.num_frames
    if it.trim is not None:
        try:
            num_frames = _apply_trim(it, info.num_frames, extra)
        except TimestampError as e:
            return Rejection.of(it, "video", "unreadable_video", str(e))
        except ValueError as e:
            return Rejection.of(it, "video", "trim_empty", f"{it.video}: {e}")
    if it.time_range is not None:
        try:
            num_frames = _apply_time_range(it, info, extra)
        except ValueError as e:
            return Rejection.of(it, "video", "bad_time_range", str(e))
    video = it.video.resolve()
    path = str(video) if cfg.absolute_paths else os.path.relpath(video, out.resolve())
    try:
        return ClipRecord(clip_id=it.clip_id, path=path, subject=it.subject, action=action.verb,
                          object=action.object, caption=atomic_caption(it.subject, action.verb, action.object),
                          task=it.task, camera=it.camera, num_frames=num_frames, fps=info.fps, split=it.split,
                          source=it.source, embodiment=it.embodiment, instruction=it.instruction, extra=extra)
    except (ManifestError, ValueError) as e:
        return Rejection.of(it, "manifest", "bad_row", str(e))


def _apply_trim(it: SourceItem, total: int, extra: dict) -> int:
    """Frames the clip will be sampled from. With timestamps the window [start, stop) goes into
    extra['frame_range'] and num_frames is its length; without them the whole video is used and
    extra['trim'] says the window could not be applied."""
    spec = it.trim
    extra["trim"] = {"start_time": spec.start_ms, "end_time": spec.end_ms, "applied": spec.timestamps is not None}
    if spec.timestamps is None:
        extra["trim"]["why_not"] = "camera has no timestamps.npy"
        return total
    start, stop = frame_window(spec, total)
    extra["frame_range"] = [start, stop]
    extra["source_num_frames"] = total
    return stop - start


def _apply_time_range(it: SourceItem, info, extra: dict) -> int:
    """Frames of a clip that is the stretch [from, to) s of a longer video; ValueError naming the file and
    the episode's fields when the stretch is empty or runs past the file's end (more than half a frame,
    the rounding a float timestamp can carry)."""
    start, stop = it.time_range
    total_s = info.num_frames / info.fps if info.fps > 0 else 0.0
    fields = f"[from_timestamp, to_timestamp) = [{start:.3f}, {stop:.3f}) s of {it.origin}"
    if not 0 <= start < stop:
        raise ValueError(f"{it.video}: empty or negative time range {fields}")
    if info.fps <= 0 or stop > total_s + 0.5 / info.fps:
        raise ValueError(f"{it.video}: time range {fields} lies outside the video "
                         f"({info.num_frames} frames at {info.fps:g} fps = {total_s:.3f} s)")
    extra["time_range"] = [start, stop]
    extra["source_num_frames"] = info.num_frames
    return max(int(round((stop - start) * info.fps)), 1)


def write_outputs(out: Path, records: list[ClipRecord], rejections: list[Rejection], pending: list[Pending],
                  summary: CurateSummary) -> None:
    from roboact.data.manifest import write_manifest

    write_manifest(out / "manifest.jsonl", records)
    atomic_write_text(out / "rejections.jsonl", "".join(r.to_json() + "\n" for r in rejections))
    atomic_write_text(out / "pending.jsonl", "".join(p.to_json() + "\n" for p in pending))
    atomic_write_json(out / "summary.json", summary.to_dict())
    atomic_write_text(out / "summary.md", summary.markdown())
    log.info("curate: %d clips, %d rejected, %d pending -> %s", len(records), len(rejections), len(pending), out)
