"""The model variants every study compares: the full model, the paper's two ablations, and the frozen-backbone
baseline — their config switches, the names tables print, and which policy table (the paper's II / III) each
belongs to. The one place these facts live: the demo, `roboact eval`, `roboact policy`, the benchmarks and
scripts/generalization.py all read them from here, so adding a fifth variant is one entry below.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Variant:
    id: str                              # folder and --variants name: "full", "no_temporal", ...
    overrides: dict = field(default_factory=dict)   # RoboActConfig fields that make this variant
    row_name: str = ""                   # its row in demo / eval / generalization tables
    policy_role: str = ""                # its role in the policy tables (`roboact policy`)
    policy_tables: tuple[str, ...] = ()  # which of the paper's policy tables ("II", "III") show it

    def matches(self, cfg) -> bool:
        """Whether a RoboActConfig is this variant (every override holds)."""
        return all(getattr(cfg, k) == v for k, v in self.overrides.items())


# Order = the order of table rows. The paper's Table III rows plus the frozen-backbone baseline (its "CLIP" row).
VARIANTS: dict[str, Variant] = {v.id: v for v in (
    Variant("full", {}, "RoboAct-CLIP", "RoboAct-CLIP", ("II", "III")),
    Variant("no_temporal", {"temporal": False}, "ablation 1 (no temporal)", "ablation 1 (no temporal)", ("III",)),
    Variant("no_disentangle", {"disentangle": False}, "ablation 2 (no disentanglement)",
            "ablation 2 (no disentanglement)", ("III",)),
    Variant("frozen_baseline", {"fusion": "meanpool", "disentangle": False}, "frozen backbone (mean-pool)",
            "frozen-backbone heads (mean-pool)", ("II",)),
)}

# Policy-table rows that are not RoboAct checkpoints: the frozen backbone alone, and outside baselines (R3M, ...).
BACKBONE_ROLE, BASELINE_ROLE = "frozen backbone", "baseline"


def describe(cfg) -> str:
    """How eval tables describe a checkpoint's architecture: "full", "no temporal", "no disentanglement", both
    ablations at once, or the mean-pool baseline (told apart by its fusion, whatever its other switches)."""
    if cfg.fusion == "meanpool":
        return "frozen-backbone baseline (mean-pooled frames + projection)"
    parts = ([] if cfg.temporal else ["no temporal"]) + ([] if cfg.disentangle else ["no disentanglement"])
    return "full" if not parts else ", ".join(parts)


def variant_of(cfg) -> Variant:
    """The variant a RoboActConfig is; with both ablation switches off, ablation 1 (the paper tests each
    alone, and the temporal module is the earlier one in the pipeline)."""
    if VARIANTS["frozen_baseline"].overrides["fusion"] == cfg.fusion:
        return VARIANTS["frozen_baseline"]
    for vid in ("no_temporal", "no_disentangle"):
        if VARIANTS[vid].matches(cfg):
            return VARIANTS[vid]
    return VARIANTS["full"]


def policy_role(kind: str, model_cfg=None) -> str:
    """A policy-table row's role, from its encoder kind and (for checkpoints) its config."""
    if kind == "backbone":
        return BACKBONE_ROLE
    if kind != "roboact":
        return BASELINE_ROLE
    return variant_of(model_cfg).policy_role


def policy_tables(role: str) -> list[str]:
    """Which of the paper's policy tables a role appears in."""
    if role in (BACKBONE_ROLE, BASELINE_ROLE):
        return ["II"]
    return [t for t in ("II", "III") if any(v.policy_role == role and t in v.policy_tables
                                            for v in VARIANTS.values())]


__all__ = ["BACKBONE_ROLE", "BASELINE_ROLE", "VARIANTS", "Variant", "describe", "policy_role", "policy_tables",
           "variant_of"]
