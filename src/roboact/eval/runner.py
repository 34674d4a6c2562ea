"""`evaluate(EvalConfig) -> dict`: every named checkpoint on one split, one table row each.

    from roboact.eval.runner import EvalConfig, evaluate
    res = evaluate(EvalConfig(manifest="corpus/manifest.jsonl", cache="corpus/cache", out="runs/eval",
                              models=[("full", ["runs/s0/full", "runs/s1/full", "runs/s2/full"]),
                                      ("no temporal", "runs/abl1/final")]))

Writes `report.md`, `report.json` and `plots/*.png` under `out`. Rows whose checkpoint does not exist are
kept as "not run" (never dropped, never filled in), so a table always shows what is missing. A row with
several checkpoints (one per training seed) reports each metric's mean and 95% t-interval over them.
"""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from roboact.data.opposites import reverse_time
from roboact.eval.config import EvalConfig
from roboact.eval.data import EvalData, load_eval_data
from roboact.eval import metrics as M
from roboact.eval.seeds import aggregate_seeds
from roboact.eval.suites import applicability, select_suites, two_way_accuracy
from roboact.eval.zero_shot import zero_shot_classifiers
from roboact.models.config import FACTORS, RoboActConfig
from roboact.models.checkpoints import CheckpointError, check_backbone, find_checkpoint
from roboact.models.variants import describe

log = logging.getLogger(__name__)

__all__ = ["EvalConfig", "evaluate"]


@dataclass
class RowResult:
    name: str
    checkpoint: str                               # the folder; with several seeds, the folders joined by ","
    status: str                                   # "ok" or "not run"
    variant: str = ""
    reason: str = ""
    metrics: dict = field(default_factory=dict)   # column key -> float (mean over seeds) or None (not applicable)
    intervals: dict = field(default_factory=dict)  # column key -> 95% t-interval over seeds (>= 2 seeds only)
    seeds: list = field(default_factory=list)     # per checkpoint: folder, training seed, its own metrics
    details: dict = field(default_factory=dict)   # per-pair |cos|, probe sizes... (of the first seed)
    notes: list[str] = field(default_factory=list)
    run_dir: str | None = None                    # where metrics.jsonl (training curves) was looked for


# --- checkpoints -----------------------------------------------------------------------------------------

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


COMP_KEYS = ("comp_v2t_r1_all", "comp_v2t_r5_all", "comp_v2t_r1_unseen", "comp_v2t_r5_unseen",
             "comp_action", "comp_object")


def compositional_metrics(model, data: EvalData, enc: dict, protos: dict, fused_all: torch.Tensor,
                          cfg: EvalConfig) -> dict:
    """The held-out clips only (the main table's compositional columns and the open-vocabulary suite).
    Two caption pools: every caption of the train and scored splits, seen pairs competing (does the model
    fall back to a familiar caption?), and unseen-only (can it tell the novel pairs apart?)."""
    mask = data.heldout_mask
    if not mask.any():
        return dict.fromkeys(COMP_KEYS)
    rows = [r for r, m in zip(data.eval_set.rows, mask.tolist()) if m]
    video, labels = enc["video"][mask], data.eval_set.labels[mask]
    res = {}
    unseen_fused = encode_captions(model, data.text(data.unseen_captions), cfg.batch_size, cfg.device)
    for name, pool, fused in (("all", data.all_captions, fused_all), ("unseen", data.unseen_captions, unseen_fused)):
        index = {c: i for i, c in enumerate(pool)}
        ids = torch.tensor([index[r.caption] for r in rows])
        sims = M.cosine_matrix(video, fused)
        for k in (1, 5):
            res[f"comp_v2t_r{k}_{name}"] = M.recall_video_to_text(sims, ids, k)
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


REVERSAL_KEYS = ("rev_fwd_acc", "rev_rev_acc", "rev_balanced", "rev_fwd_v2t_r1", "rev_rev_v2t_r1")


def reversal_metrics(model, data: EvalData, enc: dict, protos: dict, fused_all: torch.Tensor,
                     cfg: EvalConfig) -> tuple[dict, dict]:
    """Clips whose action has an opposite, played forwards and backwards (suites.py, docs/eval.md).

    2-way: the action branch must prefer the clip's own action forwards and the opposite action backwards
    (prototypes of the zero-shot classifier). Retrieval: the reversed clip's video vector must rank the
    caption with the opposite action (same subject and object) first among every caption of the train
    and scored splits; forwards, the same clips must rank their own caption first.
    """
    es, opp_all = data.eval_set, data.reversal_opposite
    idx = (opp_all >= 0).nonzero().flatten()
    if len(idx) == 0:
        return dict.fromkeys(REVERSAL_KEYS), {}
    rev = encode_clips(model, reverse_time(es.features[idx]), cfg.batch_size, cfg.device)
    own, opp = es.labels[idx, 1], opp_all[idx]
    fwd_action = enc["action"][idx]
    res = {"rev_fwd_acc": two_way_accuracy(fwd_action, protos["action"], own, opp),
           "rev_rev_acc": two_way_accuracy(rev["action"], protos["action"], opp, own)}
    res["rev_balanced"] = (res["rev_fwd_acc"] + res["rev_rev_acc"]) / 2
    cap = data.reversal_caption[idx]
    has = cap >= 0
    if has.any():
        res["rev_rev_v2t_r1"] = M.recall_video_to_text(M.cosine_matrix(rev["video"][has], fused_all), cap[has], 1)
        res["rev_fwd_v2t_r1"] = M.recall_video_to_text(M.cosine_matrix(enc["video"][idx][has], fused_all),
                                                       data.own_caption_all[idx][has], 1)
    else:
        res["rev_rev_v2t_r1"] = res["rev_fwd_v2t_r1"] = None
    per_action = {}
    for a in torch.unique(own).tolist():
        m = own == a
        per_action[data.vocab.actions[a]] = {
            "clips": int(m.sum()), "opposite": data.vocab.actions[int(opp[m][0])],
            "fwd_acc": two_way_accuracy(fwd_action[m], protos["action"], own[m], opp[m]),
            "rev_acc": two_way_accuracy(rev["action"][m], protos["action"], opp[m], own[m])}
    return res, {"per_action": per_action}


VIEWPOINT_KEYS = ("vp_action", "vp_object", "vp_v2t_r1")


def viewpoint_metrics(data: EvalData, enc: dict, protos: dict, sims: torch.Tensor) -> dict:
    """Zero-shot action/object accuracy and v->t R@1 (the scored split's distinct captions, as in the
    main table) on the clips filmed by cameras absent from the train split."""
    mk, es = data.camera_mask, data.eval_set
    if not mk.any():
        return dict.fromkeys(VIEWPOINT_KEYS)
    return {"vp_action": M.factor_accuracy(enc["action"][mk], protos["action"], es.labels[mk, 1]),
            "vp_object": M.factor_accuracy(enc["object"][mk], protos["object"], es.labels[mk, 2]),
            "vp_v2t_r1": M.recall_video_to_text(sims[mk], es.caption_ids[mk], 1)}


def model_metrics(model, data: EvalData, cfg: EvalConfig, suites: list[str]) -> tuple[dict, dict, dict]:
    """(column metrics, details, plot data) of one model on the shared data, for the suites that run."""
    es = data.eval_set
    enc = encode_clips(model, es.features, cfg.batch_size, cfg.device)
    fused = encode_captions(model, data.text(es.captions), cfg.batch_size, cfg.device)    # (C, 3D)
    sims = M.cosine_matrix(enc["video"], fused)                                              # (N, C)
    n_classes = {f: len(data.vocab.names(f)) for f in FACTORS}
    protos = zero_shot_classifiers(model, data.text(data.grid_captions), data.grid_ids, n_classes, cfg.batch_size)
    need_all = {"standard", "openvocab", "reversal"} & set(suites)
    fused_all = encode_captions(model, data.text(data.all_captions), cfg.batch_size, cfg.device) if need_all else None
    m, details = {}, {}
    if "standard" in suites:
        m.update(retrieval_metrics(sims, es.caption_ids))
        for j, f in enumerate(FACTORS):
            m[f"zs_{f}"] = (M.factor_accuracy(enc[f], protos[f], es.labels[:, j])
                            if f in data.scored_factors() else None)
    if "standard" in suites or "openvocab" in suites:
        m.update(compositional_metrics(model, data, enc, protos, fused_all, cfg))
    if "standard" in suites:
        cos = M.mean_abs_cos(enc)
        m["mean_abs_cos"] = cos["mean"]
        probes, details["probes"] = probe_metrics(model, data, enc, cfg)
        m.update(probes)
        details["abs_cos_pairs"] = cos
    if "reversal" in suites:
        rev, details["reversal"] = reversal_metrics(model, data, enc, protos, fused_all, cfg)
        m.update(rev)
    if "viewpoint" in suites:
        m.update(viewpoint_metrics(data, enc, protos, sims))
    plot = {"sims": sims, "action": enc["action"], "action_labels": es.labels[:, 1]}
    return m, details, plot


# --- the program ------------------------------------------------------------------------------------------

def training_seed(ckpt: Path) -> int | None:
    """The seed the checkpoint's run was trained with (config.json "train"), None if not recorded."""
    from roboact.utils.io import read_json

    try:
        seed = read_json(ckpt / "config.json").get("train", {}).get("seed")
    except (OSError, ValueError, AttributeError):
        return None
    return seed if isinstance(seed, int) else None


def evaluate_row(name: str, folders: tuple[str, ...], data: EvalData, cfg: EvalConfig,
                 suites: list[str]) -> tuple[RowResult, dict | None]:
    """One table row: each seed's checkpoint scored alone, then averaged (with intervals when >= 2)."""
    from roboact.models.encoder import load_heads

    resolved = [find_checkpoint(f) for f in folders]
    if all(c is None for c, _ in resolved):
        why = "; ".join(w for _, w in resolved)
        log.warning("row %r: not run (%s)", name, why)
        return RowResult(name, ",".join(folders), "not run", reason=why), None
    t0 = time.perf_counter()
    seeds, first_plot, first_details, model_cfg = [], None, {}, None
    for ckpt, _ in resolved:      # open_backbone_and_cache made sure every seed has its checkpoint
        model = load_heads(ckpt, device=cfg.device)
        m, details, plot = model_metrics(model, data, cfg, suites)
        seeds.append({"checkpoint": str(ckpt), "train_seed": training_seed(ckpt), "metrics": m})
        if first_plot is None:
            first_plot, first_details, model_cfg = plot, details, model.cfg
        if len(resolved) > 1:
            seeds[-1]["details"] = details
    means, intervals = aggregate_seeds([s["metrics"] for s in seeds])
    first_details["seconds"] = round(time.perf_counter() - t0, 3)
    ckpt0 = Path(seeds[0]["checkpoint"])
    run_dir = find_run_dir(ckpt0)
    notes = row_notes(model_cfg, data)
    train_seeds = [s["train_seed"] for s in seeds]
    if len(seeds) > 1 and None not in train_seeds and len(set(train_seeds)) < len(train_seeds):
        notes.append(f"its {len(seeds)} checkpoints were trained with training seeds {train_seeds}: repeated "
                     f"seeds are not independent replications, so the interval is too narrow")
    if len(seeds) > 1:
        notes.append(f"mean ± 95% t-interval over {len(seeds)} checkpoints; plots show the first "
                     f"({seeds[0]['checkpoint']})")
    row = RowResult(name, ",".join(s["checkpoint"] for s in seeds), "ok", describe(model_cfg), metrics=means,
                    intervals=intervals, seeds=seeds, details=first_details, notes=notes,
                    run_dir=str(run_dir) if run_dir else None)
    log.info("row %r (%s, %d seed(s)): evaluated in %.1f s", name, row.variant, len(seeds),
             first_details["seconds"])
    return row, first_plot


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
    try:
        check_backbone(mc, backbone.name, text_dim=backbone.text_dim, where=str(folder))
    except CheckpointError as e:
        raise ValueError(str(e)) from None
    if (mc.image_dim, mc.n_frames) != (cache.dim, cache.n_frames):
        raise ValueError(f"{folder}: expects {mc.n_frames} frames x {mc.image_dim} features, the cache "
                         f"{cache.folder} holds {cache.n_frames} x {cache.dim}")


def check_cache_runtime(cache, runtime: str | None, device: str) -> str:
    """The runtime the cache's features came from; an error when it is not the one asked for."""
    from roboact.backbones.runtime import resolve_runtime

    have = cache.identity.get("runtime", "eager")
    want = None if runtime is None else resolve_runtime(runtime, device)
    if want is not None and want != have:
        raise ValueError(f"{cache.folder}: features were extracted with runtime {have!r}, not "
                         f"{want!r} (--runtime {runtime}); extract them with "
                         f"`roboact extract --runtime {runtime}` into another --out, or leave --runtime out")
    return have


def open_backbone_and_cache(cfg: EvalConfig):
    """The backbone (named, or the checkpoints' own) and its feature cache; every present checkpoint checked."""
    from roboact.backbones import load_backbone
    from roboact.data.features import FeatureCache
    from roboact.models.encoder import load_config

    found = []
    for name, folders in cfg.models:
        resolved = [find_checkpoint(d) for d in folders]
        missing = [(d, why) for d, (p, why) in zip(folders, resolved) if p is None]
        if missing and len(missing) < len(folders):
            d, why = missing[0]
            raise ValueError(f"row {name!r}: checkpoint {folders.index(d) + 1} of {len(folders)} ({d}) is "
                             f"missing: {why}. A multi-seed row needs every seed's checkpoint (name only the "
                             f"finished ones to average fewer seeds)")
        row = [(p, load_config(p)) for p, _ in resolved if p is not None]
        variants = sorted({describe(mc) for _, mc in row})
        if len(variants) > 1:
            raise ValueError(f"row {name!r}: its checkpoints are different variants ({'; '.join(variants)}); "
                             f"one row averages seeds of one model")
        found += row
    if not found:
        raise ValueError("none of the models has a checkpoint: " + "; ".join(
            f"{n}: {'; '.join(find_checkpoint(d)[1] for d in ds)}" for n, ds in cfg.models))
    name = cfg.backbone or found[0][1].backbone
    path = cfg.backbone_path if cfg.backbone else (cfg.backbone_path or found[0][1].backbone_path)
    backbone = load_backbone(name, path=path, runtime="eager")     # only its text tower runs here
    cache = FeatureCache(cfg.cache, backbone.name)
    check_cache_runtime(cache, cfg.runtime, cfg.device)
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
    suites, skipped = select_suites(cfg.suites, applicability(data))
    log.info("suites: %s%s", ", ".join(suites), "".join(f"; {k} not run ({v})" for k, v in skipped.items()))
    rows, plot_data = [], {}
    for name, folders in tqdm(cfg.models, desc="eval", disable=not cfg.progress, dynamic_ncols=True):
        row, plot = evaluate_row(name, folders, data, cfg, suites)
        rows.append(row)
        if plot is not None:
            plot_data[name] = plot
    from roboact.utils import shutdown

    out = Path(cfg.out)
    plots = {}
    with shutdown.deferred():  # plots and report are one set: a stop waits for the last file
        if cfg.plots:
            from roboact.eval.plots import write_plots

            plots = write_plots(out / "plots", rows, plot_data, data, suites)
        features = {**backbone.spec(), "runtime": cache.identity.get("runtime", "eager")}
        report = build_report(cfg, data, rows, plots, features, time.perf_counter() - t0, suites, skipped)
        write_report(out, report)
    return report
