"""The policy side of the instruction chain (roboact.policy.chain), with stand-ins for the encoder, the policy
and the judge: which conditioning vector each stage gets, one encoder stream per episode, and the judge's
switch (a fresh stream and detector per stage, thresholds per stage)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from roboact.judge.scoring import StepScores
from roboact.policy.chain import ChainPolicyActor, JudgeSwitch, StageJudging
from roboact.sim.base import Observation
from roboact.sim.chain.stages import STAGES


class Encoder:
    def __init__(self):
        self.resets, self.frames = 0, 0

    def reset(self):
        self.resets += 1

    def step(self, frames):
        self.frames += len(frames)
        return torch.zeros(len(frames), 4)


class Policy(torch.nn.Module):
    def forward(self, emb, prop, cond=None):
        return (cond[:, :7].expand(len(emb), 7).clone(),)      # acts out its conditioning vector


def _obs(value=0):
    return Observation(rgb={"agentview": np.full((8, 8, 3), value, np.uint8)}, proprio=np.zeros(9, np.float32),
                       state=np.zeros(3))


def test_actor_conditions_each_stage_on_its_instruction_and_streams_one_episode():
    vectors = {st.instruction: torch.full((7,), float(k)) for k, st in enumerate(STAGES)}
    enc = Encoder()
    actor = ChainPolicyActor(enc, Policy(), "agentview", vectors)
    for k, st in enumerate(STAGES):
        for n in range(3):
            np.testing.assert_array_equal(actor(None, st, _obs(), n == 0), np.full(7, float(k)))
    assert enc.resets == 1 and enc.frames == 12, "one stream across the stages, not one per stage"
    with pytest.raises(KeyError, match="no conditioning vector"):
        ChainPolicyActor(Encoder(), Policy(), "agentview", {})(None, STAGES[0], _obs(), True)


class Stream:
    def __init__(self, texts, log):
        self.texts, self.t = texts, 0
        log.append(texts)

    def step(self, frame):
        self.t += 1
        p = min(1.0, 0.25 * self.t)                 # "done" grows more likely each step of a stage
        return StepScores(np.array([p, 1 - p]), np.array([p, 1 - p]))


class Judge:
    def __init__(self):
        self.streams = []

    def stream(self, texts):
        return Stream(texts, self.streams)


def test_judge_switch_restarts_its_stream_per_stage_with_that_stage_threshold():
    judge = Judge()
    switch = JudgeSwitch(judge, [StageJudging(["open", "closed"], 0.5, patience=2),
                                 StageJudging(["held", "in drawer"], 0.9)], "agentview")
    fired = [switch(0, _obs()) for _ in range(4)]
    assert fired == [False, False, True, True]       # 0.25, 0.5, 0.75 (two in a row >= 0.5 at step 3)
    fired = [switch(1, _obs()) for _ in range(4)]
    assert fired == [False, False, False, True]      # a new stream: 0.25 .. 1.0 against 0.9
    assert judge.streams == [["open", "closed"], ["held", "in drawer"]]
    assert switch.scores == [[0.25, 0.5, 0.75, 1.0], [0.25, 0.5, 0.75, 1.0]]
    with pytest.raises(IndexError, match="given 2 stages"):
        switch(2, _obs())


@pytest.mark.sim
def test_evaluate_chain_from_the_committed_evaluation_starts():
    """One episode from the committed evaluation split with the experts as the actor: all four stages under
    the oracle; none when a switch fires at once (switched early)."""
    from pathlib import Path

    pytest.importorskip("libero.libero", reason="needs roboact[sim]")
    from roboact.policy.chain import evaluate_chain
    from roboact.sim.chain.rollout import expert_actor

    starts = str(Path(__file__).parents[2] / "docs/results/chain/chain_starts_eval.json")
    oracle = evaluate_chain(expert_actor, starts, 1, 64, "agentview")
    assert oracle["switch"] == "oracle" and oracle["in_a_row"] == [1.0, 1.0, 1.0, 1.0]
    early = evaluate_chain(expert_actor, starts, 1, 64, "agentview", make_switch=lambda: lambda k, obs: True)
    assert early["in_a_row"] == [0.0] * 4 and early["rows"][0]["failure"] == "switched early"
    with pytest.raises(ValueError, match="holds 50 chain initial states"):
        evaluate_chain(expert_actor, starts, 51, 64, "agentview")
