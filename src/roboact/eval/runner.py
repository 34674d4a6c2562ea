"""`evaluate(EvalConfig) -> dict`: every named checkpoint on one split, one table row each.

    from roboact.eval.runner import EvalConfig, evaluate
    res = evaluate(EvalConfig(manifest="corpus/manifest.jsonl", cache="corpus/cache", out="runs/eval",
                              models=[("full", "runs/full/final"), ("no temporal", "runs/abl1/final")]))

Writes `report.md`, `report.json` and `plots/*.png` under `out`. Rows whose checkpoint does not exist are
kept as "not run" (never dropped, never filled in), so a table always shows what is missing.
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from roboact.eval.config import EvalConfig
from roboact.eval.data import EvalData, load_eval_data
from roboact.eval import metrics as M
from roboact.eval.zero_shot import zero_shot_classifiers
from roboact.models.config import FACTORS, RoboActConfig

log = logging.getLogger(__name__)

__all__ = ["EvalConfig", "evaluate"]


@dataclass
class RowResult:
    name: str
    checkpoint: str
    status: str                                   # "ok" or "not run"
    variant: str = ""
    reason: str = ""
    metrics: dict = field(default_factory=dict)   # column key -> float or None (not applicable)
    details: dict = field(default_factory=dict)   # per-pair |cos|, probe sizes, caption counts...
    notes: list[str] = field(default_factory=list)
    run_dir: str | None = None                    # where metrics.jsonl (training curves) was looked for


# --- checkpoints -----------------------------------------------------------------------------------------

def resolve_checkpoint(folder: str) -> tuple[Path | None, str]:
    """The checkpoint folder to load (the folder itself, or its `final/`), or None and why not.

    An unfinished run (checkpoints/ but no final/) is "not run": evaluating an intermediate step as if it
    were the trained model would misreport it.
    """
    p = Path(folder)
    for cand in (p, p / "final"):
        if (cand / "config.json").is_file():
            return cand, ""
    if not p.exists():
        return None, f"{p} does not exist"
    steps = sorted((p / "checkpoints").glob("step_*")) if (p / "checkpoints").is_dir() else []
    if steps:
        return None, f"training unfinished: {p} has {steps[-1].name} but no final/"
    return None, f"no config.json in {p} or {p / 'final'}"


def variant_of(cfg: RoboActConfig) -> str:
    if cfg.fusion == "meanpool":
        return "frozen-backbone baseline (mean-pooled frames + projection)"
    parts = ([] if cfg.temporal else ["no temporal"]) + ([] if cfg.disentangle else ["no disentanglement"])
    return "full" if not parts else ", ".join(parts)


def find_run_dir(ckpt: Path) -> Path | None:
    """Where the trainer wrote metrics.jsonl: the checkpoint folder or up to two levels above it."""
    for cand in (ckpt, ckpt.parent, ckpt.parent.parent):
        if (cand / "metrics.jsonl").is_file():
            return cand
    return None


# --- encoding --------------------------------------------------------------------------------------------

@torch.no_grad()
def encode_clips(model, feats: torch.Tensor, batch: int, device: str) -> dict[str, torch.Tensor]:
    """Cached frame features (N, n, d) -> subject/action/object (N, D) and video (N, 3D), float32 on CPU."""
    out: dict[str, list[torch.Tensor]] = {k: [] for k in (*FACTORS, "video")}
    for i in range(0, len(feats), batch):
        o = model.encode_frames(feats[i:i + batch].to(device, torch.float32))
        for k in out:
            out[k].append(getattr(o, k).float().cpu())
    return {k: torch.cat(v) for k, v in out.items()}


@torch.no_grad()
def encode_captions(model, text_feats: torch.Tensor, batch: int, device: str) -> torch.Tensor:
    """Frozen text features (C, d_text) -> the fused text vectors (C, 3D) of eq. 23."""
    parts = [model.encode_text_features(text_feats[i:i + batch].to(device, torch.float32))["fused"].float().cpu()
             for i in range(0, len(text_feats), batch)]
    return torch.cat(parts)


# --- metrics of one model --------------------------------------------------------------------------------

def retrieval_metrics(sims: torch.Tensor, caption_ids: torch.Tensor) -> dict:
    """R@1 and R@5 both ways from the (clips, distinct captions) similarity matrix."""
    out = {}
    for k in (1, 5):
        out[f"v2t_r{k}"] = M.recall_video_to_text(sims, caption_ids, k)
        out[f"t2v_r{k}"] = M.recall_text_to_video(sims, caption_ids, k)
    return out


def compositional_metrics(model, data: EvalData, enc: dict, protos: dict, cfg: EvalConfig) -> dict:
    """The held-out clips only. Two caption pools: with the seen-pair captions competing (does the model
    fall back to a familiar caption?) and unseen-only (can it tell the novel pairs apart?)."""
    keys = ("comp_v2t_r1_all", "comp_v2t_r1_unseen", "comp_action", "comp_object")
    mask = data.heldout_mask
    if not mask.any():
        return dict.fromkeys(keys)
    rows = [r for r, m in zip(data.eval_set.rows, mask.tolist()) if m]
    video, labels = enc["video"][mask], data.eval_set.labels[mask]
    res = {}
    for key, pool in (("comp_v2t_r1_all", data.all_captions), ("comp_v2t_r1_unseen", data.unseen_captions)):
        index = {c: i for i, c in enumerate(pool)}
        fused = encode_captions(model, data.text(pool), cfg.batch_size, cfg.device)
        ids = torch.tensor([index[r.caption] for r in rows])
        res[key] = M.recall_video_to_text(M.cosine_matrix(video, fused), ids, 1)
    res["comp_action"] = M.factor_accuracy(enc["action"][mask], protos["action"], labels[:, 1])
    res["comp_object"] = M.factor_accuracy(enc["object"][mask], protos["object"], labels[:, 2])
    return res


def probe_metrics(model, data: EvalData, enc: dict, cfg: EvalConfig) -> tuple[dict, dict]:
    """Leakage both ways. The probes need this model's features of the train split, so those are encoded here."""
    keys = ("leak_object_from_action", "leak_object_from_action_chance",
            "leak_action_from_object", "leak_action_from_object_chance")
    if data.probe_set is None:
        return dict.fromkeys(keys), {}
    tr = encode_clips(model, data.probe_set.features, cfg.batch_size, cfg.device)
    ytr, yev = data.probe_set.labels, data.eval_set.labels
    res, details = {}, {}
    for name, src, tgt in (("leak_object_from_action", "action", 2), ("leak_action_from_object", "object", 1)):
        p = M.leakage_probe(tr[src], ytr[:, tgt], enc[src], yev[:, tgt], seed=cfg.seed)
        res[name], res[f"{name}_chance"] = (p.accuracy, p.chance) if p else (None, None)
        details[name] = asdict(p) if p else {"skipped": "fewer than two classes in the probe's training labels"}
    return res, details


def model_metrics(model, data: EvalData, cfg: EvalConfig) -> tuple[dict, dict, dict]:
    """(column metrics, details, plot data) of one model on the shared data."""
    es = data.eval_set
    enc = encode_clips(model, es.features, cfg.batch_size, cfg.device)
    fused = encode_captions(model, data.text(es.captions), cfg.batch_size, cfg.device)    # (C, 3D)
    sims = M.cosine_matrix(enc["video"], fused)                                              # (N, C)
    m = retrieval_metrics(sims, es.caption_ids)
    n_classes = {f: len(data.vocab.names(f)) for f in FACTORS}
    protos = zero_shot_classifiers(model, data.text(data.grid_captions), data.grid_ids, n_classes, cfg.batch_size)
    for j, f in enumerate(FACTORS):
        m[f"zs_{f}"] = M.factor_accuracy(enc[f], protos[f], es.labels[:, j]) if f in data.scored_factors() else None
    m.update(compositional_metrics(model, data, enc, protos, cfg))
    cos = M.mean_abs_cos(enc)
    m["mean_abs_cos"] = cos["mean"]
    probes, probe_details = probe_metrics(model, data, enc, cfg)
    m.update(probes)
    plot = {"sims": sims, "action": enc["action"], "action_labels": es.labels[:, 1]}
    return m, {"abs_cos_pairs": cos, "probes": probe_details}, plot


# --- the program ------------------------------------------------------------------------------------------

def evaluate_row(name: str, folder: str, data: EvalData, cfg: EvalConfig) -> tuple[RowResult, dict | None]:
    from roboact.models.encoder import load_heads

    ckpt, why = resolve_checkpoint(folder)
    if ckpt is None:
        log.warning("row %r: not run (%s)", name, why)
        return RowResult(name, folder, "not run", reason=why), None
    model = load_heads(ckpt, device=cfg.device)
    t0 = time.perf_counter()
    m, details, plot = model_metrics(model, data, cfg)
    details["seconds"] = round(time.perf_counter() - t0, 3)
    run_dir = find_run_dir(ckpt)
    row = RowResult(name, str(ckpt), "ok", variant_of(model.cfg), metrics=m, details=details,
                    notes=row_notes(model.cfg, data), run_dir=str(run_dir) if run_dir else None)
    log.info("row %r (%s): evaluated in %.1f s", name, row.variant, details["seconds"])
    return row, plot


def row_notes(mc: RoboActConfig, data: EvalData) -> list[str]:
    notes = []
    if not mc.disentangle:
        notes.append("no disentanglement branches: subject/object/action are the thirds of Fv "
                     "(aligned with the three text MLPs), so the factor metrics read those thirds")
    if (mc.subjects, mc.actions, mc.objects) != (data.vocab.subjects, data.vocab.actions, data.vocab.objects):
        notes.append("trained on a different vocabulary than this manifest's (zero-shot uses names only)")
    return notes


def check_compatible(folder: Path, mc: RoboActConfig, backbone, cache) -> None:
    """A checkpoint must read the cache's features and the backbone's text features; say which differs."""
    if mc.backbone != backbone.name:
        raise ValueError(f"{folder}: trained on backbone {mc.backbone!r}, evaluating with {backbone.name!r}")
    if (mc.image_dim, mc.n_frames) != (cache.dim, cache.n_frames):
        raise ValueError(f"{folder}: expects {mc.n_frames} frames x {mc.image_dim} features, the cache "
                         f"{cache.folder} holds {cache.n_frames} x {cache.dim}")
    if mc.text_dim != backbone.text_dim:
        raise ValueError(f"{folder}: expects text width {mc.text_dim}, "
                         f"backbone {backbone.name} gives {backbone.text_dim}")


def open_backbone_and_cache(cfg: EvalConfig):
    """The backbone (named, or the checkpoints' own) and its feature cache; every present checkpoint checked."""
    from roboact.backbones import load_backbone
    from roboact.data.features import FeatureCache
    from roboact.models.encoder import load_config

    found = [(p, load_config(p)) for p, _ in (resolve_checkpoint(d) for _, d in cfg.models) if p is not None]
    if not found:
        raise ValueError("none of the models has a checkpoint: " + "; ".join(
            f"{n}: {resolve_checkpoint(d)[1]}" for n, d in cfg.models))
    name = cfg.backbone or found[0][1].backbone
    path = cfg.backbone_path if cfg.backbone else (cfg.backbone_path or found[0][1].backbone_path)
    backbone = load_backbone(name, path=path)
    cache = FeatureCache(cfg.cache, backbone.name)
    for p, mc in found:
        check_compatible(p, mc, backbone, cache)
    return backbone, cache


@contextlib.contextmanager
def thread_limit(n: int | None):
    """Run with n torch and BLAS threads (None: unchanged), restoring the previous settings afterwards."""
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


def evaluate(cfg: EvalConfig) -> dict:
    """Score every model of `cfg` on `cfg.split`; write the report; return the report as a dict."""
    with thread_limit(cfg.threads):
        return _evaluate(cfg)


def _evaluate(cfg: EvalConfig) -> dict:
    from tqdm import tqdm

    from roboact.eval.report import build_report, write_report

    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    backbone, cache = open_backbone_and_cache(cfg)
    data = load_eval_data(cfg, cache, backbone)
    rows, plot_data = [], {}
    for name, folder in tqdm(cfg.models, desc="eval", disable=not cfg.progress, dynamic_ncols=True):
        row, plot = evaluate_row(name, folder, data, cfg)
        rows.append(row)
        if plot is not None:
            plot_data[name] = plot
    out = Path(cfg.out)
    plots = {}
    if cfg.plots:
        from roboact.eval.plots import write_plots

        plots = write_plots(out / "plots", rows, plot_data, data)
    report = build_report(cfg, data, rows, plots, backbone.spec(), time.perf_counter() - t0)
    write_report(out, report)
    return report
