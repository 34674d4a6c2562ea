"""The paper's Table I (videos, unique tasks, distinct atomic actions, total frames) for a curated corpus,
plus what was left out and why."""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Sequence

from roboact.data.curate.items import Pending, Rejection
from roboact.data.manifest import ClipRecord


@dataclass
class CurateSummary:
    total_videos: int
    unique_tasks: int
    distinct_actions: int
    total_frames: int
    distinct_objects: int
    subjects: dict[str, int]
    actions: dict[str, int]
    rejected: int
    rejected_by_code: dict[str, int]
    pending: int
    source: str = ""
    annotator: str = ""
    annotator_stats: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        """Table I of the paper, as markdown."""
        rows = [("Total Videos", self.total_videos), ("Unique Tasks", self.unique_tasks),
                ("Distinct Atomic Actions", self.distinct_actions), ("Total Frames", self.total_frames)]
        lines = ["| Item | Count |", "|---|---:|"] + [f"| {k} | {v:,} |" for k, v in rows]
        return "\n".join(lines)

    def markdown(self) -> str:
        parts = [f"# Curated dataset summary ({self.source}, annotator: {self.annotator})", "",
                 "Table I (as in the paper):", "", self.table(), "",
                 f"Distinct objects: {self.distinct_objects}. Subjects: {_fmt(self.subjects)}.", "",
                 f"Actions: {_fmt(self.actions)}.", "",
                 f"Rejected: {self.rejected} ({_fmt(self.rejected_by_code) or 'none'}); "
                 f"pending (rerun to finish): {self.pending}."]
        return "\n".join(parts) + "\n"


def summarize(records: Sequence[ClipRecord], rejections: Sequence[Rejection], pending: Sequence[Pending],
              source: str = "", annotator: str = "", annotator_stats: dict | None = None) -> CurateSummary:
    actions = Counter(r.action for r in records)
    return CurateSummary(
        total_videos=len(records),
        unique_tasks=len({r.task or r.instruction for r in records}),
        distinct_actions=len(actions),
        total_frames=sum(r.num_frames for r in records),
        distinct_objects=len({r.object for r in records}),
        subjects=dict(sorted(Counter(r.subject for r in records).items())),
        actions=dict(actions.most_common()),
        rejected=len(rejections),
        rejected_by_code=dict(Counter(r.code for r in rejections).most_common()),
        pending=len(pending), source=source, annotator=annotator, annotator_stats=dict(annotator_stats or {}))


def _fmt(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())
