"""The training program: data -> heads -> steps, with evaluation and checkpoints around them.

Split as STYLE.md asks: `Trainer.step` (one optimisation step), `Trainer.evaluate` (validation),
`Trainer.checkpoint`; `train()` wires them. Batches are a pure function of (seed, step), so a resumed run
sees exactly the batches a straight run would have seen; together with restored RNG/optimizer states
this makes resume bit-exact on CPU.
"""
from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from roboact import dist
from roboact.models.config import RoboActConfig
from roboact.models.roboact_clip import RoboActCLIP
from roboact.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from roboact.train.config import TrainConfig
from roboact.data.clipset import ClipSet, TextTable, Vocab, build_clipset, load_rows, reversal_map
from roboact.utils import shutdown
from roboact.utils.config import from_dict
from roboact.utils.io import atomic_write_json

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """A loss became NaN/Inf; the last good checkpoint is kept and named in the message."""


@dataclass
class TrainResult:
    run_dir: str
    final: str
    steps: int
    last_losses: dict


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def lr_lambda(warmup: int, total: int, min_ratio: float):
    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return f


class BatchPlan:
    """Global batch of step s = positions [s*GB, (s+1)*GB) of an endless stream of seeded permutations;
    rank r takes its contiguous slice, so the union over ranks is the single-process batch."""

    def __init__(self, n: int, batch: int, world: int, rank: int, seed: int):
        self.n, self.batch, self.world, self.rank, self.seed = n, batch, world, rank, seed
        self._perms: dict[int, torch.Tensor] = {}

    def _perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perms[epoch] = torch.randperm(self.n, generator=g)
        return self._perms[epoch]

    def indices(self, step: int) -> torch.Tensor:
        gb = self.batch * self.world
        pos = torch.arange(step * gb, (step + 1) * gb)[self.rank * self.batch:(self.rank + 1) * self.batch]
        return torch.stack([self._perm(int(p) // self.n)[int(p) % self.n] for p in pos])


class Trainer:
    def __init__(self, cfg: TrainConfig, model: RoboActCLIP, train_set: ClipSet, val_set: ClipSet | None,
                 text: TextTable, vocab: Vocab, run_dir: Path):
        self.cfg, self.model, self.train_set, self.val_set = cfg, model, train_set, val_set
        self.text, self.vocab, self.run_dir = text, vocab, run_dir
        self.device = dist.device()
        self.model.to(self.device)
        params = [p for p in model.parameters() if p.requires_grad]
        o = cfg.optim
        self.opt = torch.optim.AdamW(params, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_lambda(o.warmup_steps, o.steps, o.min_lr_ratio))
        self.plan = BatchPlan(len(train_set), o.batch_size, dist.world_size(), dist.rank(), cfg.seed)
        self.train_caption_feats = text(train_set.captions)                       # (C, d_text)
        self.rev_action, self.rev_caption = reversal_map(train_set, vocab)        # (N,), (N,): -1 none
        self.gather = _gather if dist.world_size() > 1 else None
        self.amp = cfg.amp and self.device.type == "cuda"
        self.step_num = 0
        self.checkpointed_at = time.monotonic()  # of the last checkpoint, or of the start: what a stop loses

    # --- one optimisation step ---------------------------------------------------------------------
    def step(self) -> dict[str, float]:
        self.model.train()
        idx = self.plan.indices(self.step_num)
        feats = self.train_set.features[idx].to(torch.float32)                    # (B, n, d)
        caption_ids = self.train_set.caption_ids[idx]                             # (B,)
        labels = self.train_set.label_dict(idx)
        if self.cfg.data.reverse_prob > 0:
            feats, caption_ids, labels = self._reverse_some(idx, feats, caption_ids, labels)
        feats = feats.to(self.device)
        text = self.train_caption_feats[caption_ids].to(self.device)              # (B, d_text)
        labels = {k: v.to(self.device) for k, v in labels.items()}
        recomb = self._recomb_batch()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
            out = self.model(feats, text, labels, recomb=recomb, gather=self.gather, generator=self._tcn_generator())
        self._check_finite(out.losses)
        self.opt.zero_grad(set_to_none=True)
        out.loss.backward()
        if dist.world_size() > 1:
            _average_gradients(self.model)
        if self.cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.opt.step()
        self.sched.step()
        self.model.update_banks(out, labels, self.step_num, gather=self.gather)
        self.step_num += 1
        losses = {k: float(v.detach()) for k, v in out.losses.items()}
        losses["lr"] = self.sched.get_last_lr()[0]
        losses["temperature"] = float(1.0 / self.model.temperature_scale().detach())
        return losses

    def _reverse_some(self, idx, feats, caption_ids, labels):
        """Replace eligible clips, each with probability data.reverse_prob, by their time reversal with the
        opposite action's label and caption. Seeded by (seed, step, rank), so a resumed run draws alike."""
        g = torch.Generator().manual_seed((self.cfg.seed * 1_000_003 + self.step_num) * 64 + dist.rank())
        flip = (torch.rand(len(idx), generator=g) < self.cfg.data.reverse_prob) & (self.rev_action[idx] >= 0)
        if not bool(flip.any()):
            return feats, caption_ids, labels
        feats = torch.where(flip[:, None, None], feats.flip(1), feats)
        caption_ids = torch.where(flip, self.rev_caption[idx], caption_ids)
        labels = {**labels, "action": torch.where(flip, self.rev_action[idx], labels["action"])}
        return feats, caption_ids, labels

    def _tcn_generator(self) -> torch.Generator | None:
        """The time-contrastive term's draws, seeded by (seed, step, rank) like `_reverse_some` (offset by
        2**40 so the two streams differ), so a resumed run draws alike and dropout's global RNG is untouched."""
        if self.model.cfg.lambda_tcn == 0:
            return None
        return torch.Generator().manual_seed((self.cfg.seed * 1_000_003 + self.step_num) * 64 + dist.rank() + 2**40)

    def _recomb_batch(self):
        if not self.model.cfg.disentangle or self.model.cfg.lambda_recomb == 0:
            return None
        g = torch.Generator().manual_seed(self.cfg.seed * 7919 + self.step_num)
        trip = self.model.sample_triplets(self.model.cfg.recomb_size, generator=g)
        if len(trip) < 2:
            return None
        caps = [self.vocab.triplet_caption(tuple(t)) for t in trip.tolist()]
        return trip.to(self.device), self.text(caps).to(self.device)

    def _check_finite(self, losses: dict[str, torch.Tensor]) -> None:
        bad = [k for k, v in losses.items() if not torch.isfinite(v).all()]
        if bad:
            last = latest_checkpoint(self.run_dir)
            raise TrainingDiverged(f"step {self.step_num}: loss term(s) {', '.join(bad)} became NaN/Inf; "
                                   f"training stopped. Last good checkpoint: {last or 'none yet'}. "
                                   "Try a lower optim.lr or a larger optim.warmup_steps.")

    # --- validation ---------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Validation loss terms and video->text R@1 over the split's distinct captions."""
        if self.val_set is None or len(self.val_set) < 2:
            return {}
        self.model.eval()
        vs = self.val_set
        tf = self.text(vs.captions).to(self.device)
        caps = self.model.encode_text_features(tf)["fused"]                           # (C, 3D)
        totals: dict[str, float] = {}
        hits, n = 0, 0
        for i in range(0, len(vs), 256):
            idx = torch.arange(i, min(i + 256, len(vs)))
            feats = vs.features[idx].to(self.device, torch.float32)
            text = tf[vs.caption_ids[idx].to(self.device)]
            # fixed draws for the time-contrastive term: validation values comparable across evaluations
            out = self.model(feats, text, {k: v.to(self.device) for k, v in vs.label_dict(idx).items()},
                             generator=torch.Generator().manual_seed(self.cfg.seed + i))
            for k, v in out.losses.items():
                totals[k] = totals.get(k, 0.0) + float(v) * len(idx)
            sims = torch.nn.functional.normalize(out.video, dim=-1) @ torch.nn.functional.normalize(caps, dim=-1).T
            hits += int((sims.argmax(-1).cpu() == vs.caption_ids[idx]).sum())
            n += len(idx)
        res = {f"val/{k}": v / n for k, v in totals.items()}
        res["val/r1_video_to_text"] = hits / n
        return res

    # --- checkpoints ---------------------------------------------------------------------------------
    def checkpoint(self) -> Path | None:
        path = None
        if dist.is_main():
            path = save_checkpoint(self.run_dir, self.step_num, self.model, self.opt, self.sched,
                                   self.cfg.to_dict(), keep=self.cfg.keep_checkpoints)
        dist.barrier()
        self.checkpointed_at = time.monotonic()
        return path

    def stop(self) -> None:
        """Preempted (SIGTERM/SIGINT): save a checkpoint unless the last is younger than
        `checkpoint_on_stop_s`, then raise the stop. Rank 0 decides, so every rank reaches the barrier."""
        old = time.monotonic() - self.checkpointed_at >= self.cfg.checkpoint_on_stop_s
        if dist.broadcast_object(old):
            self.checkpoint()
        last = latest_checkpoint(self.run_dir)
        shutdown.note(f"step {self.step_num} of {self.cfg.optim.steps}; checkpoint {last or 'none yet'}",
                      resume="rerun the same command with --resume to continue from that checkpoint")
        shutdown.raise_stopped()

    def resume(self) -> None:
        last = latest_checkpoint(self.run_dir)
        if last is None:
            log.info("no checkpoint in %s: starting from scratch", self.run_dir)
            return
        self.step_num = load_checkpoint(last, self.model, self.opt, self.sched)
        self.model.to(self.device)
        log.info("resumed from %s (step %d)", last, self.step_num)


def _gather(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    sizes = dist.all_gather_object(int(x.shape[0]))
    return dist.all_gather(x, sum_grads=x.requires_grad), sum(sizes[:dist.rank()])


def _average_gradients(model: torch.nn.Module) -> None:
    w = dist.world_size()
    for p in model.parameters():
        if p.requires_grad and p.grad is not None:
            p.grad.copy_(dist.all_reduce_sum(p.grad) / w)


def build_model_config(cfg: TrainConfig, vocab: Vocab, image_dim: int, text_dim: int, n_frames: int) -> RoboActConfig:
    fields = {**asdict(cfg.model), "backbone": cfg.data.backbone, "backbone_path": cfg.data.backbone_path,
              "image_dim": image_dim, "text_dim": text_dim, "n_frames": n_frames,
              "subjects": vocab.subjects, "actions": vocab.actions, "objects": vocab.objects}
    return from_dict(RoboActConfig, fields, where="model")


# --- the program ----------------------------------------------------------------------------------------
def prepare(cfg: TrainConfig, run_dir: Path):
    """Data, vocab, text tables and a fresh model: everything a Trainer needs."""
    from roboact.backbones import load_backbone
    from roboact.data.features import FeatureCache

    rows = load_rows(cfg.data.manifest)
    vocab = Vocab.from_rows(rows)
    cache = FeatureCache(cfg.data.cache, cfg.data.backbone)
    train_rows = [r for r in rows if r.split in cfg.data.train_splits]
    val_rows = [r for r in rows if r.split in cfg.data.val_splits]
    if not train_rows:
        raise ValueError(f"{cfg.data.manifest}: no rows in splits {cfg.data.train_splits}")
    train_set = build_clipset(train_rows, cache, vocab, "train")
    val_set = build_clipset(val_rows, cache, vocab, "val") if val_rows else None
    backbone = load_backbone(cfg.data.backbone, path=cfg.data.backbone_path)
    texts = sorted({r.caption for r in rows}) + [vocab.triplet_caption(t) for t in vocab.triplets()]
    text = TextTable.build(texts, backbone, run_dir / "text_features.safetensors" if dist.is_main() else None)
    model_cfg = build_model_config(cfg, vocab, cache.dim, backbone.text_dim, cache.n_frames)
    model = RoboActCLIP(model_cfg)
    model.register_seen_triplets(train_set.labels)
    return model, train_set, val_set, text, vocab


def train(cfg: TrainConfig, resume: bool = False, stop_after: int | None = None) -> TrainResult:
    """Train RoboAct-CLIP heads on a feature cache. `stop_after` ends early at that step (after
    checkpointing), which is how interruption is simulated in tests; `resume` continues the run in cfg.out."""
    with dist.distributed():
        run_dir = Path(cfg.out)
        run_dir.mkdir(parents=True, exist_ok=True)
        seed_everything(cfg.seed)  # same initial weights on every rank
        model, train_set, val_set, text, vocab = prepare(cfg, run_dir)
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast_tensor(t.data)  # and make sure of it
        seed_everything(cfg.seed + dist.rank())  # dropout differs per rank, as it would across a bigger batch
        trainer = Trainer(cfg, model, train_set, val_set, text, vocab, run_dir)
        if resume:
            trainer.resume()
        elif latest_checkpoint(run_dir) is not None:
            raise ValueError(f"{run_dir} already holds checkpoints: pass --resume to continue, or pick a new --out")
        if dist.is_main():
            atomic_write_json(run_dir / "train_config.json", cfg.to_dict())
            truncate_metrics(run_dir / "metrics.jsonl", trainer.step_num)
        with shutdown.deferred():  # a signal stops the loop between steps (Trainer.stop), never inside one
            losses = _run_steps(trainer, cfg, run_dir, stop_after)
        final = run_dir / "final"
        if trainer.step_num >= cfg.optim.steps and dist.is_main():
            from roboact.models.encoder import save_heads

            save_heads(model.cpu(), final, extra={"train": cfg.to_dict(), "step": trainer.step_num})
            model.to(trainer.device)
        dist.barrier()
        return TrainResult(str(run_dir), str(final), trainer.step_num, losses)


def _run_steps(trainer: Trainer, cfg: TrainConfig, run_dir: Path, stop_after: int | None) -> dict:
    from tqdm import tqdm

    end = cfg.optim.steps if stop_after is None else min(stop_after, cfg.optim.steps)
    logger = MetricLogger(run_dir, cfg.tensorboard) if dist.is_main() else None
    bar = tqdm(total=cfg.optim.steps, initial=trainer.step_num, disable=not (cfg.progress and dist.is_main()),
               desc="train", dynamic_ncols=True)
    losses: dict = {}
    try:
        while trainer.step_num < end:
            if _stop_requested():
                trainer.stop()
            losses = trainer.step()
            s = trainer.step_num
            bar.update(1)
            if s % cfg.log_every == 0 or s == end:
                bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items() if k not in ("lr",)}, refresh=False)
                if logger:
                    logger.log(s, {f"train/{k}": v for k, v in losses.items()})
            if cfg.eval_every and (s % cfg.eval_every == 0 or s == cfg.optim.steps):
                val = trainer.evaluate()
                if logger and val:
                    logger.log(s, val)
            if s % cfg.checkpoint_every == 0 or s == end:
                trainer.checkpoint()
    finally:
        bar.close()
        if logger:
            logger.close()
    return losses


def _stop_requested() -> bool:
    """Whether any rank got a stop signal: all ranks stop at the same step (a rank that went on alone
    would wait forever in the next collective). One tiny all-reduce per step under torchrun."""
    if dist.world_size() == 1:
        return shutdown.requested()
    return bool(dist.all_reduce_sum(torch.tensor([float(shutdown.requested())])).item() > 0)


def truncate_metrics(path: Path, step: int) -> None:
    """Drop logged lines past `step`: a fresh run starts an empty log, a resumed one forgets what the
    interrupted run logged after its last checkpoint (those steps are about to be redone)."""
    if not path.is_file():
        return
    from roboact.utils.io import atomic_write_text

    keep = [ln for ln in path.read_text(encoding="utf-8").splitlines()
            if ln.strip() and json.loads(ln).get("step", 0) <= step]
    atomic_write_text(path, "".join(ln + "\n" for ln in keep))


class MetricLogger:
    """metrics.jsonl (what plots read) plus TensorBoard scalars when available."""

    def __init__(self, run_dir: Path, tensorboard: bool):
        self.path = run_dir / "metrics.jsonl"
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tb"))
            except ImportError:
                log.warning("tensorboard not installed: scalars go to metrics.jsonl only (pip install roboact[train])")

    def log(self, step: int, values: dict[str, float]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        if self.tb:
            for k, v in values.items():
                self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.tb:
            self.tb.close()
