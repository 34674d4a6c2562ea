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

from dataclasses import dataclass
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
    with (>= 1 other: the score is then the softmax probability of texts[0]; alone, its cosine)."""

    texts: Sequence[str]
    threshold: float
    patience: int = 1


class JudgeSwitch:
    """`switch(stage_index, obs)` for run_chain: a fresh judge stream and Detector when a stage starts, one
    camera frame per step. One per episode."""

    def __init__(self, judge, stages: Sequence[StageJudging], camera: str):
        from roboact.judge.detect import Detector

        self.judge, self.stages, self.camera = judge, list(stages), camera
        self._detector = Detector
        self.k, self.stream, self.detector = -1, None, None
        self.scores: list[list[float]] = []                  # per stage, the score at each step (for reports)

    def __call__(self, k: int, obs) -> bool:
        if k >= len(self.stages):
            raise IndexError(f"stage {k + 1}: the judge was given {len(self.stages)} stages")
        if k != self.k:
            st = self.stages[k]
            self.k, self.stream = k, self.judge.stream(list(st.texts))
            self.detector = self._detector(st.threshold, st.patience)
            self.scores.append([])
        s = self.stream.step(np.asarray(obs.rgb[self.camera]))
        score = float((s.prob if s.prob is not None else s.cosine)[0])
        self.scores[-1].append(score)
        return self.detector.step(score)


def evaluate_chain(make_actor, starts: str, episodes: int, image_size: int, camera: str,
                   make_switch=None) -> dict:
    """Run the chain from the first `episodes` chain initial states of `starts` (the eval split) with
    `make_actor(start)` as the actor (ChainPolicyActor, or roboact.sim.chain.rollout.expert_actor) and, when
    given, `make_switch()` as the instruction switch (JudgeSwitch; default the oracle). One seed's rows and
    its CALVIN shares (`in_a_row`); `roboact.sim.chain.rollout.in_a_row_over_seeds` joins seeds."""
    from roboact.sim.chain.rollout import chain_env, run_chain, summarize_chain
    from roboact.sim.chain.starts import ChainStarts

    chosen = ChainStarts.load(starts).starts[:episodes]
    if len(chosen) < episodes:
        raise ValueError(f"{starts}: holds {len(chosen)} chain initial states, asked for {episodes} episodes")
    env = chain_env(image_size, (camera,))
    rows = []
    for s in chosen:
        act = make_actor(s)
        run = run_chain(env, s, act, switch=make_switch() if make_switch else None)
        rows.append({"index": s.index, "source": s.source, "completed": run.completed,
                     "stage_steps": run.stage_steps(), "failed_phase": run.failed_phase, "failure": run.failure})
    return {"switch": "judge" if make_switch else "oracle", "rows": rows, **summarize_chain(rows)}
