"""What flows between the curate stages: source items, rejection rows and pending rows.

A source turns a dataset into `SourceItem`s (one per video that could become a clip) plus `Rejection`s for
what it could not use. Every later stage either passes an item on or turns it into a rejection (bad input,
multi-action instruction) or a pending row (not decided yet: LLM budget spent or API unavailable), so no
input ever disappears without a written reason.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Rejection codes, counted per code in the summary. Free-text details go into `reason`.
REJECTION_CODES = (
    "bad_row",            # generic manifest row unreadable (not UTF-8, not JSON, missing column)
    "bad_metadata",       # RH20T metadata.json missing or unreadable
    "low_rating",         # RH20T rating below --min-rating
    "no_language",        # no instruction for the task
    "no_video",           # camera folder without a colour video, or a listed file that does not exist
    "bad_instruction",    # empty, not UTF-8 or too long
    "multi_action",       # Algorithm 1, line 7
    "no_action",          # no verb or no object could be extracted
    "llm_unparseable",    # the LLM never gave a usable JSON answer
    "llm_error",          # the LLM API refused the request (4xx other than auth / rate limit)
    "unreadable_video",   # missing, empty, truncated or zero-frame video
    "trim_empty",         # human episode whose start/end window covers no frame
    "bad_time_range",     # LeRobot episode whose [from_timestamp, to_timestamp) is empty or outside its mp4
    "duplicate_id",       # a clip id seen before (the first one is kept)
)


@dataclass(frozen=True)
class TrimSpec:
    """A time window (ms, the clock of timestamps.npy) that a clip is cut to; RH20T human episodes."""
    start_ms: int
    end_ms: int
    timestamps: Path | None   # cam_<serial>/timestamps.npy; None when the camera has none


@dataclass
class SourceItem:
    clip_id: str
    video: Path               # absolute path of the video file
    instruction: str
    subject: str              # "Robot" / "Human" (Algorithm 1: from the source, not from the text)
    origin: str               # where the item came from, for messages: "manifest.csv:3", an episode dir
    task: str = ""
    camera: str = ""
    embodiment: str = ""
    split: str = "train"
    source: str = ""
    trim: TrimSpec | None = None
    time_range: tuple[float, float] | None = None   # seconds of `video` the clip is (LeRobot v3.0 episodes)
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Rejection:
    id: str
    path: str
    stage: str                # source | instruction | annotate | video | manifest
    code: str
    reason: str
    instruction: str = ""

    def __post_init__(self) -> None:
        if self.code not in REJECTION_CODES:
            raise ValueError(f"unknown rejection code {self.code!r} (known: {', '.join(REJECTION_CODES)})")

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def of(cls, item: SourceItem, stage: str, code: str, reason: str) -> "Rejection":
        return cls(item.clip_id, str(item.video), stage, code, reason, item.instruction)


@dataclass(frozen=True)
class Pending:
    """An item not decided in this run (not rejected): a rerun picks it up."""
    id: str
    path: str
    instruction: str
    reason: str               # "pending: budget", "pending: llm unavailable (...)"

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)
