"""The multi-task policy through the instruction chain (roboact.sim.chain): the actor and the judge's switch
that `run_chain` takes.

The chain is one episode: the frozen encoder sees its frames as one stream (its window is not reset when the
instruction changes, as a robot's camera is not), while the policy's conditioning vector is the current
stage's instruction's. Who changes the instruction is either the oracle (the stage's predicate, run_chain's
default) or the judge: a `JudgeSwitch` streams the camera through the RoboAct-CLIP judge against the stage's
texts (the first says "done") and fires when its Detector does, with that stage's calibrated threshold
(`roboact judge --calibrate` on the stage's demo file of the chain's train split). Both modes are scored by
the predicates.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch


class ChainPolicyActor:
    """`act(env, stage, obs, first)` for run_chain from a frozen encoder and a multi-task BC policy;
    `vectors`: each stage instruction -> its conditioning vector (C,). One per episode (the encoder is reset
    at the chain's first step)."""

    def __init__(self, encoder, policy, camera: str, vectors: dict[str, torch.Tensor]):
        self.encoder, self.policy, self.camera = encoder, policy, camera
        self.vectors = {k: v.reshape(1, -1).float() for k, v in vectors.items()}
        self.started = False

    @torch.no_grad()
    def __call__(self, env, stage, obs, first: bool) -> np.ndarray:
        if stage.instruction not in self.vectors:
            raise KeyError(f"no conditioning vector for the instruction {stage.instruction!r}; the policy knows: "
                           f"{', '.join(self.vectors)}")
        if not self.started:
            self.encoder.reset()
            self.policy.eval()
            self.started = True
        emb = self.encoder.step(np.asarray(obs.rgb[self.camera])[None])                # (1, D)
        prop = torch.from_numpy(np.asarray(obs.proprio, np.float32)[None])            # (1, P)
        return self.policy(emb, prop, cond=self.vectors[stage.instruction])[0][0].numpy().astype(np.float64)

    def phase(self) -> str:
        return "policy"


@dataclass
class StageJudging:
    """How the judge decides one stage is done: `texts[0]` is the "done" text, the others what it competes
    with (>= 1 other: the score is then the softmax probability of texts[0]; alone, its cosine);
    `embedding`: the judge's embedding for this stage (None: the judge's own), as calibration chose it."""

    texts: Sequence[str]
    threshold: float
    patience: int = 1
    embedding: str | None = None


class JudgeSwitch:
    """`switch(stage_index, obs)` for run_chain: a fresh judge stream and Detector when a stage starts, one
    camera frame per step. One per episode."""

    def __init__(self, judge, stages: Sequence[StageJudging], camera: str):
        from roboact.judge.detect import Detector

        self.judge, self.stages, self.camera = judge, list(stages), camera
        self._detector = Detector
        self._others: dict = {}
        self.k, self.stream, self.detector = -1, None, None
        self.scores: list[list[float]] = []                  # per stage, the score at each step (for reports)

    def __call__(self, k: int, obs) -> bool:
        if k >= len(self.stages):
            raise IndexError(f"stage {k + 1}: the judge was given {len(self.stages)} stages")
        if k != self.k:
            st = self.stages[k]
            self.k, self.stream = k, self._judge_for(st.embedding).stream(list(st.texts))
            self.detector = self._detector(st.threshold, st.patience)
            self.scores.append([])
        s = self.stream.step(np.asarray(obs.rgb[self.camera]))
        score = float((s.prob if s.prob is not None else s.cosine)[0])
        self.scores[-1].append(score)
        return self.detector.step(score)

    def _judge_for(self, embedding: str | None):
        """The judge scoring with `embedding`: the one given, or one sharing its encoder (made once)."""
        import dataclasses

        if embedding is None or embedding == getattr(self.judge, "embedding", embedding):
            return self.judge
        if embedding not in self._others:
            from roboact.judge.scoring import Judge

            cfg = dataclasses.replace(self.judge.config, embedding=embedding)
            self._others[embedding] = Judge(self.judge.encoder, cfg, checkpoint=self.judge.checkpoint)
        return self._others[embedding]


def evaluate_chain(make_actor, starts: str, episodes: int, image_size: int, camera: str,
                   make_switch=None, stages=None, progress=None) -> dict:
    """Run the chain from the first `episodes` chain initial states of `starts` (the eval split) with
    `make_actor(start)` as the actor (ChainPolicyActor, or roboact.sim.chain.rollout.expert_actor) and, when
    given, `make_switch()` as the instruction switch (JudgeSwitch; default the oracle). One seed's rows and
    its CALVIN shares (`in_a_row`); `roboact.sim.chain.rollout.in_a_row_over_seeds` joins seeds. Under a
    switch each row also says, per stage, when the predicate held and when the switch fired (judge_delays).
    `progress(i, row)`: called after each episode."""
    from roboact.sim.chain.rollout import chain_env, run_chain, summarize_chain
    from roboact.sim.chain.stages import STAGES
    from roboact.sim.chain.starts import ChainStarts

    stages = tuple(stages or STAGES)
    chosen = ChainStarts.load(starts).starts[:episodes]
    if len(chosen) < episodes:
        raise ValueError(f"{starts}: holds {len(chosen)} chain initial states, asked for {episodes} episodes")
    env = chain_env(image_size, (camera,), stages)
    rows = []
    for i, s in enumerate(chosen):
        act = make_actor(s)
        run = run_chain(env, s, act, stages=stages, switch=make_switch() if make_switch else None)
        row = {"index": s.index, "source": s.source, "completed": run.completed,
               "stage_steps": run.stage_steps(), "failed_phase": run.failed_phase, "failure": run.failure}
        if make_switch:
            row["switching"] = judge_delays(run.flags, run.stage_ends, run.failure)
        rows.append(row)
        if progress is not None:
            progress(i, row)
    return {"switch": "judge" if make_switch else "oracle", "rows": rows, **summarize_chain(rows, stages)}


# --- `roboact policy --multitask --chain` ------------------------------------------------------------------
SWITCHES = ("oracle", "judge")


@dataclass
class ChainSettings:
    """The chain in a multi-task run (LIBERO-Goal only): the four stages' chained demos join the training set as
    training-only tasks (their files `<demos>/libero_goal/<stage>_demo.hdf5`, from `roboact chain demos -o
    <demos>`), and each cell, once trained, runs the chain from the first `episodes` initial states of
    `starts` (the evaluation split) under each switch. `stage_budget` (0: each stage's own, 150 steps)
    shortens every stage for smoke runs. Judge: thresholds calibrated per checkpoint on the stages' demo
    files (`objective`, `patience`), window stride `judge_stride` (0: the policy's)."""

    enabled: bool = False
    starts: str = "data/chain/chain_starts_eval.json"
    episodes: int = 20
    switches: list[str] = field(default_factory=lambda: list(SWITCHES))
    stage_budget: int = 0
    judge_objective: str = "episode"
    judge_patience: int = 3
    judge_stride: int = 0

    def __post_init__(self) -> None:
        from roboact.judge.detect import OBJECTIVES
        from roboact.utils.config import check

        check(self.episodes >= 1, "chain.episodes", f"must be >= 1, got {self.episodes}")
        bad = [s for s in self.switches if s not in SWITCHES]
        check(bool(self.switches) and not bad and len(set(self.switches)) == len(self.switches), "chain.switches",
              f"give one or more distinct switches of {', '.join(SWITCHES)}, got {self.switches}")
        check(self.stage_budget >= 0, "chain.stage_budget", f"must be >= 0 (0: each stage's own), got "
                                                            f"{self.stage_budget}")
        check(self.judge_objective in OBJECTIVES, "chain.judge_objective",
              f"must be one of {OBJECTIVES}, got {self.judge_objective!r}")
        check(self.judge_patience >= 1, "chain.judge_patience", f"must be >= 1, got {self.judge_patience}")
        check(self.judge_stride >= 0, "chain.judge_stride", f"must be >= 0 (0: the policy's), got {self.judge_stride}")

    def stages(self):
        """The chain's stages, with every budget set to `stage_budget` when it is given."""
        import dataclasses

        from roboact.sim.chain.stages import STAGES

        if not self.stage_budget:
            return STAGES
        return tuple(dataclasses.replace(s, budget=self.stage_budget) for s in STAGES)


def stage_instructions() -> dict[str, str]:
    """Each stage's task name (its demo file's) -> its instruction."""
    from roboact.sim.chain.stages import STAGES

    return {s.name: s.instruction for s in STAGES}


def stage_demos_command(demos_dir: str, num_demos: int) -> str:
    return (f"roboact chain starts --split train --count {num_demos + max(5, num_demos // 10)} && "
            f"roboact chain demos -n {num_demos} -o {demos_dir}")


def judge_delays(flags: Sequence[bool], stage_ends: Sequence[int], failure: str | None) -> list[dict]:
    """Per stage the judge switched on (or failed to), when the oracle's predicate first held and when the
    switch fired, in steps from the stage's start: `delay` = fired - held (the stage ends at the switch); the
    stage the run failed on is "early" (fired before the predicate held) or "missed" (the predicate held,
    the judge never fired within the budget) or "not done" (neither)."""
    out, start = [], 0
    bounds = list(stage_ends) + ([len(flags)] if failure else [])
    for k, end in enumerate(bounds):
        seg = list(flags[start:end])
        held = next((i + 1 for i, f in enumerate(seg) if f), None)        # steps into the stage
        last = k == len(bounds) - 1 and bool(failure)
        if not last:
            out.append({"stage": k + 1, "held": held, "fired": len(seg), "outcome": "on_time",
                        "delay": len(seg) - held if held is not None else None})
        elif failure == "switched early":
            out.append({"stage": k + 1, "held": None, "fired": len(seg), "outcome": "early", "delay": None})
        else:
            out.append({"stage": k + 1, "held": held, "fired": None,
                        "outcome": "missed" if held is not None else "not done", "delay": None})
        start = end
    return out


def calibrate_chain_judge(judge, stage_files: Sequence[str], settings: ChainSettings, feature_cache: str,
                          max_demos: int = 0, calib_fraction: float = 0.5) -> dict:
    """One threshold (and embedding) per stage for the chain's judge, from the chained demos of each stage.

    What the judge sees in a chain: from a stage's first step it streams the camera against the stage's
    instruction until it fires; the predicate may already hold, then the frames are what the policy does next.
    A chained demo of stage k shows exactly the frames up to success, so the labelled episode is stage k's
    frames after its first action (the switch reads the observation after each step) followed by stage k+1's
    first frames (the last stage: its own recorded tail, roboact.sim.chain.demos.TAIL_STEPS), the success
    frame being the first after stage k's last action. Per stage the first `calib_fraction` of the chain starts
    calibrate (each embedding, `settings.judge_objective`, `settings.judge_patience`), the embedding with the
    better calibration value is chosen (ties: fused) and the remaining starts are the held-out report."""
    import math

    from roboact.judge.demos import FrameFeatures, brief, calibrate_embeddings, image_key
    from roboact.judge.detect import LabelledEpisode
    from roboact.judge.scoring import EMBEDDINGS, JudgeError
    from roboact.sim.chain.demos import TAIL_STEPS
    from roboact.sim.chain.stages import STAGES
    from roboact.sim.demos import DemoFile

    if len(stage_files) != len(STAGES):
        raise JudgeError(f"the chain has {len(STAGES)} stages, got {len(stage_files)} demo files")
    files = [DemoFile(p) for p in stage_files]
    by_start = [{int(f.demo_attrs[k]["chain_start"]): k for k in f.keys[: max_demos or None]} for f in files]
    starts = sorted(set.intersection(*(set(b) for b in by_start)))
    n_cal = math.ceil(calib_fraction * len(starts))
    if n_cal < 1 or len(starts) - n_cal < 1:
        raise JudgeError(f"{len(starts)} chained episode(s) in every stage's file ({', '.join(stage_files)}); "
                         "need at least 2 (one to calibrate, one held out)")
    keys = [image_key(f, "agentview") for f in files]
    feats = [FrameFeatures(judge, f, key, Path(feature_cache), [b[s] for s in starts])
             for f, key, b in zip(files, keys, by_start)]
    embeddings = [e for e in EMBEDDINGS if e != "action" or judge.encoder.cfg.disentangle]
    stages = []
    for k, (f, stage) in enumerate(zip(files, STAGES)):
        texts = [stage.instruction]
        text_emb = judge.text_embeddings(texts)
        episodes: dict[str, list] = {e: [] for e in embeddings}
        for s in starts:
            ep = f.episode(by_start[k][s])
            own = feats[k].get(by_start[k][s], ep.obs[keys[k]])[1:]
            if k + 1 < len(files):
                nxt = files[k + 1].episode(by_start[k + 1][s])
                after = feats[k + 1].get(by_start[k + 1][s], nxt.obs[keys[k + 1]])[: 1 + TAIL_STEPS]
                success = len(own)
            else:
                from roboact.judge.demos import success_frame

                first = success_frame(ep.rewards)
                if first is None:
                    raise JudgeError(f"{f.path}: demo {by_start[k][s]} has no frame after its success (chained "
                                     "demos made before the recorded tail; remake them with `roboact chain demos`)")
                after, success = own[len(own):], first - 1
            windows = judge.window_embeddings(torch.cat([own, after]))
            for e in embeddings:
                res = judge.score_windows(windows, texts, embedding=e, text_emb=text_emb)
                episodes[e].append(LabelledEpisode(res.score(0), success, f"start_{s}"))
        per, chosen = calibrate_embeddings(episodes, n_cal, settings.judge_objective, settings.judge_patience)
        for e in per:
            per[e]["held_out"] = brief(per[e]["held_out"])
        stages.append({"stage": stage.name, "texts": texts, "embedding": chosen,
                       "threshold": per[chosen]["calibration"]["threshold"], "patience": settings.judge_patience,
                       "calibration_starts": starts[:n_cal], "held_out_starts": starts[n_cal:], "embeddings": per})
    for ff in feats:
        ff.flush()
    return {"checkpoint": judge.checkpoint, "window": judge.window, "stride": judge.stride,
            "objective": settings.judge_objective, "files": [str(p) for p in stage_files], "stages": stages}


def stage_judging(calibration: dict) -> list[StageJudging]:
    return [StageJudging(s["texts"], s["threshold"], s["patience"], s["embedding"]) for s in calibration["stages"]]


def run_chain_evals(job, encoder, policy, vectors: dict[str, torch.Tensor], folder: Path, digest: str) -> dict:
    """A multi-task cell's chain evaluations, one JSON per switch under `folder` (a rerun runs only the
    missing ones, and again any another policy ran: multitask.kept_result). `vectors`: every training
    instruction's conditioning vector (the stages' among them); `digest`: the policy's (multitask.policy_digest)."""
    import logging

    from roboact.policy.multitask import kept_result
    from roboact.policy.suites import get_bench_suite
    from roboact.utils.io import atomic_write_json

    log = logging.getLogger(__name__)
    settings, camera = job.chain, get_bench_suite(job.suite).camera
    out = {}
    for switch in settings.switches:
        path = folder / f"{switch}.json"
        if (kept := kept_result(path, digest)) is not None:
            out[switch] = kept
            continue
        make_switch, extra = None, {}
        if switch == "judge":
            if job.judging is None:
                out[switch] = {"status": "not run: the judge is a RoboAct-CLIP checkpoint's own; this row has none"}
                continue
            from roboact.judge.scoring import Judge

            judge = Judge.from_pretrained(job.spec.path, device=job.encoder.device, runtime=job.encoder.runtime,
                                          stride=job.judging["stride"], window=job.judging["window"])
            stages = stage_judging(job.judging)
            make_switch = lambda: JudgeSwitch(judge, stages, camera)  # noqa: E731
            extra = {"judging": [{k: s[k] for k in ("stage", "embedding", "threshold", "patience")}
                                 for s in job.judging["stages"]]}

        def progress(i, row, switch=switch):
            log.info("%s seed %d chain (%s): episode %d/%d completed %d stage(s)%s", job.spec.name, job.seed,
                     switch, i + 1, settings.episodes, row["completed"],
                     f" ({row['failure']})" if row["failure"] else "")

        res = evaluate_chain(lambda s: ChainPolicyActor(encoder, policy, camera, vectors), settings.starts,
                             settings.episodes, job.image_size, camera, make_switch, settings.stages(), progress)
        out[switch] = {"status": "ok", **extra, **res, "policy_sha256": digest}
        atomic_write_json(path, out[switch])
    return out


def chain_judging(cfg, checkpoint: str, stage_sources: list, out: Path) -> dict:
    """The judge's calibration for one checkpoint (cached in OUT/judge/, keyed by everything it depends on);
    `stage_sources`: the stages' policy.data.DemoSource (their files and the sha256 already taken of them)."""
    import hashlib
    import json

    from roboact.judge.scoring import Judge
    from roboact.policy.encoders import checkpoint_digest
    from roboact.utils.io import atomic_write_json, read_json

    s = cfg.chain
    stride = s.judge_stride or cfg.encoder.stride
    ident = {"checkpoint": checkpoint_digest(checkpoint), "files": [src.sha256 for src in stage_sources],
             "num_demos": cfg.num_demos, "objective": s.judge_objective, "patience": s.judge_patience,
             "stride": stride, "backbone": [cfg.encoder.backbone, cfg.encoder.backbone_path]}
    key = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    path = out / "judge" / f"calibration-{key}.json"
    if path.is_file():
        return read_json(path)
    judge = Judge.from_pretrained(checkpoint, device=cfg.encoder.device, runtime=cfg.encoder.runtime, stride=stride)
    cal = calibrate_chain_judge(judge, [str(src.path) for src in stage_sources], s, cfg.cache_dir,
                                max_demos=cfg.num_demos)
    cal["identity"] = ident
    atomic_write_json(path, cal)
    return cal


def chain_report(settings: ChainSettings, names: list[str], why: dict[str, str | None],
                 chains: dict[str, dict[int, dict]]) -> dict:
    """The report's chain section: per table row and switch, CALVIN's shares over seeds (mean and 95% t
    interval), per stage success, and under the judge how its switching went against the oracle's predicate."""
    from roboact.sim.chain.rollout import in_a_row_over_seeds

    n = len(settings.stages())
    rows = []
    for name in names:
        entry = {"name": name, "switches": {}}
        for sw in settings.switches:
            seeds = chains.get(name, {})
            runs = {seed: c.get(sw, {}) for seed, c in seeds.items()}
            status = why.get(name) or next((r["status"] for r in runs.values() if r.get("status", "ok") != "ok"),
                                          None if runs else "not run")
            if status:
                entry["switches"][sw] = {"status": status}
                continue
            completed = {seed: [r["completed"] for r in run["rows"]] for seed, run in runs.items()}
            res = {"status": "ok", "in_a_row": in_a_row_over_seeds(completed, n),
                   "stage_success": [[st["success_rate"] for st in run["stages"]] for run in runs.values()]}
            if sw == "judge":
                sw_rows = [s for run in runs.values() for r in run["rows"] for s in r.get("switching", [])]
                res["switching"] = {o: sum(s["outcome"] == o for s in sw_rows) for o in
                                    ("on_time", "early", "missed", "not done")}
                delays = [s["delay"] for s in sw_rows if s["delay"] is not None]
                res["switching"]["delay_mean"] = float(np.mean(delays)) if delays else None
                res["judging"] = {seed: run.get("judging") for seed, run in runs.items()}
            entry["switches"][sw] = res
        rows.append(entry)
    return {"settings": {"starts": settings.starts, "episodes": settings.episodes,
                         "budgets": [s.budget for s in settings.stages()],
                         "instructions": [s.instruction for s in settings.stages()]}, "rows": rows}


def chain_markdown(chain: dict) -> list[str]:
    """Markdown lines of the chain table (CALVIN-style: % of episodes completing k stages in a row)."""
    from roboact.policy.stats import Interval

    st = chain["settings"]
    lines = ["## The instruction chain (CALVIN-style)", "",
             f"One episode runs the stages in order ({' -> '.join(st['instructions'])}; "
             f"{', '.join(map(str, st['budgets']))} steps each) from each of the first {st['episodes']} chain initial "
             f"states of `{st['starts']}`, the policy conditioned on the current stage's instruction. The switch to "
             "the next instruction: the simulator's predicate (oracle) or the RoboAct-CLIP judge (its own "
             "checkpoint, thresholds calibrated on the chained demos). Both are scored by the predicates: % of "
             "episodes completing at least k stages in a row, mean ± 95% t interval over seeds.", "",
             "| method | switch | 1 | 2 | 3 | 4 | judge: on time / early / missed, mean delay (steps) |",
             "|---|---|---|---|---|---|---|"]
    for r in chain["rows"]:
        for sw, res in r["switches"].items():
            if res["status"] != "ok":
                lines.append(f"| {r['name']} | {sw} | - | - | - | - | {res['status']} |")
                continue
            vals = [Interval(*(None if k[f] is None else 100 * k[f] for f in ("mean", "low", "high")), k["n"],
                             None if k["std"] is None else 100 * k["std"]).fmt() for k in res["in_a_row"]]
            j = res.get("switching")
            note = "" if j is None else (f"{j['on_time']} / {j['early']} / {j['missed']}, "
                                         + ("-" if j["delay_mean"] is None else f"{j['delay_mean']:.1f}"))
            lines.append(f"| {r['name']} | {sw} | {' | '.join(vals)} | {note} |")
    return lines + [""]
