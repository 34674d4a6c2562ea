"""Per-step cost of a policy rollout with each kind of frozen encoder, and the full-mode wall time it implies.

For one suite: the env (step + render of the policy camera), each encoder's closed-loop `step` (one new
frame), the BC policy's forward, and one BC training step. R3M (ResNet-50) and real CLIP (ViT-B/32) are timed
with random weights: their cost does not depend on the weights, which cannot be had here. RoboAct-CLIP is
timed with freshly initialised heads on the real lite0 backbone (or --model CHECKPOINT), and its heads alone
(the window's frame features are cached by the stream, so heads_ms is what RoboAct adds to the backbone).

    .venv/bin/python benchmarks/bench_policy.py --suite metaworld [--steps 60] [--threads 1] [--model CKPT]
        [--only "backbone alone" "RoboAct-CLIP (full)"]     # rows whose name contains one of these

Token rows (`tokens` output: the window's frames, or RoboAct's Temporal Diff-Transformer states) are timed
with the attention-pooling BC policy they need; their heads_ms is the TDT alone.

The estimate: per (row, task, seed) cell, evaluations x rollouts x steps per episode x (env + encoder +
policy) + training steps x train step; bounds use episodes of the expert's length (all succeed early) and of
the 200-step cap (all fail). The full mode's defaults: 4 tasks x 3 seeds x 4 evaluations x 20 rollouts.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


def median_ms(fn, n: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1000 * float(np.median(ts))


def env_cost(suite, steps: int) -> tuple[float, np.ndarray, np.ndarray]:
    """ms per env step (with render) under the expert's actions; a frame and proprio for the encoders."""
    from roboact.policy.runner import ExpertAgent, policy_env

    t0 = time.perf_counter()
    env = policy_env(suite.name, suite.tasks[0], 128, 200)
    create_s = time.perf_counter() - t0
    agent = ExpertAgent(suite.name, suite.tasks[0])
    obs = env.reset(**suite.reset_kwargs(0))
    agent.reset(env)
    ts = []
    for _ in range(steps):
        a = agent.act(obs)
        t = time.perf_counter()
        obs = env.step(a)
        ts.append(time.perf_counter() - t)
        if obs.success:
            obs = env.reset(**suite.reset_kwargs(1))
            agent.reset(env)
    env.close()
    print(f"env created in {create_s:.1f} s")
    return 1000 * float(np.median(ts)), obs.rgb[suite.camera], obs.proprio


def encoders(args) -> dict:
    """{row name: a function building its encoder}, so rows left out by --only cost nothing."""
    from roboact.backbones import load_backbone
    from roboact.models import RoboActCLIP, RoboActConfig
    from roboact.models.encoder import RoboActEncoder
    from roboact.policy.encoders import FrameObsEncoder, FrameWindowObsEncoder, RoboActObsEncoder
    from roboact.policy.r3m import R3MEncoder, ResNetTrunk

    bb = load_backbone("lite0-minilm", load_text=False)

    def roboact_row(name: str, over: dict, output: str = "fused"):
        if args.model and not over:
            import roboact

            enc = roboact.load(args.model, backbone=bb)
        else:
            enc = RoboActEncoder(RoboActCLIP(RoboActConfig(actions=["open"], objects=["drawer"], **over)), bb).eval()
        return RoboActObsEncoder(enc, "", name, output=output, stride=args.stride)

    out = {"frozen backbone alone (lite0)": lambda: FrameObsEncoder(bb, "lite0"),
           "frozen backbone alone (lite0; tokens: 16 frames, attention pooling)":
               lambda: FrameWindowObsEncoder(bb, "lite0", 16, args.stride)}
    for name, over in (("RoboAct-CLIP (full)", {}), ("ablation 1 (no temporal)", {"temporal": False}),
                       ("ablation 2 (no disentanglement)", {"disentangle": False})):
        out[name] = lambda name=name, over=over: roboact_row(name, over)
    out["RoboAct-CLIP (full; tokens, attention pooling)"] = lambda: roboact_row("RoboAct-CLIP", {}, "tokens")
    out["R3M ResNet-50 (random weights, timing only)"] = lambda: FrameObsEncoder(R3MEncoder(ResNetTrunk(50)), "r3m")
    out["CLIP ViT-B/32 (random weights, timing only)"] = lambda: FrameObsEncoder(_random_clip(), "clip")
    return {k: f for k, f in out.items() if not args.only or any(o in k for o in args.only)}


def _random_clip():
    """A ViT-B/32 CLIP image tower with random weights, behind the hf-clip preprocessing."""
    from transformers import CLIPConfig, CLIPModel

    from roboact.backbones.hf_clip import CLIP_MEAN, CLIP_STD, _as_tensor
    from roboact.backbones.base import FrozenBackbone

    class RandomClip(FrozenBackbone):
        name, image_mean, image_std, image_size, image_dim = "clip-random", CLIP_MEAN, CLIP_STD, 224, 512

        def __init__(self):
            super().__init__()
            self.model = CLIPModel(CLIPConfig()).eval()  # defaults are ViT-B/32, projection 512
            self.freeze()

        def _image_features(self, pixels):
            return _as_tensor(self.model.get_image_features(pixel_values=pixels))

    return RandomClip()


def main() -> None:
    from roboact.policy.bc import BCConfig, BCPolicy
    from roboact.policy.suites import get_bench_suite

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", default="metaworld", choices=("metaworld", "libero_goal"))
    ap.add_argument("--steps", type=int, default=60, help="timed steps per component")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default=None, help="a RoboAct-CLIP checkpoint on lite0-minilm (else random heads)")
    ap.add_argument("--only", nargs="+", default=None, metavar="TEXT", help="rows whose name contains one of these")
    ap.add_argument("--stride", type=int, default=1, help="window stride of the windowed rows (policy --stride)")
    ap.add_argument("--expert-steps", type=float, default=None,
                    help="mean episode length of a success (default: Meta-World 70, LIBERO 100)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    suite = get_bench_suite(args.suite)
    env_ms, frame, proprio = env_cost(suite, args.steps)
    rows = {}
    for name, build in encoders(args).items():
        enc = build()
        enc.reset()
        enc_ms = median_ms(lambda: enc.step(frame), args.steps)
        n_tokens = enc.token_shape[0] if enc.token_shape else 0
        pol = BCPolicy(BCConfig(enc.dim, suite.proprio_dim, suite.action_dim, n_tokens=n_tokens)).eval()
        emb, prop = enc.step(frame), torch.from_numpy(proprio)[None]
        pol_ms = median_ms(lambda: pol.act(emb, prop), args.steps)
        pol.train()
        opt = torch.optim.Adam(pol.parameters(), 1e-3)
        xb, pb, ab = (torch.randn(32, *emb.shape[1:]), torch.randn(32, suite.proprio_dim),
                      torch.randn(32, suite.action_dim))

        def train_step():
            _, loss = pol(xb, pb, ab)
            opt.zero_grad()
            loss.backward()
            opt.step()

        heads_ms = None
        if hasattr(enc, "enc"):  # RoboAct: the heads alone (the TDT alone for tokens), on a window it holds
            window = enc.rings[0].window
            heads = enc.enc.encode_tokens if enc.output == "tokens" else enc.enc.encode_video
            heads_ms = round(median_ms(lambda: heads(window), args.steps), 2)
        rows[name] = {"encoder_ms": round(enc_ms, 2), "heads_ms": heads_ms, "policy_ms": round(pol_ms, 3),
                      "train_step_ms": round(median_ms(train_step, args.steps), 3),
                      "step_ms": round(env_ms + enc_ms + pol_ms, 1)}
        print(f"{name:48s} encoder {enc_ms:7.1f} ms  policy {pol_ms:5.2f} ms  "
              f"step total {rows[name]['step_ms']:6.1f} ms")
    print(json.dumps({"suite": args.suite, "threads": args.threads, "stride": args.stride,
                      "env_ms_per_step": round(env_ms, 1),
                      "rows": rows, "full_mode_estimate": estimate(suite, env_ms, rows, args.expert_steps)}, indent=2))


def estimate(suite, env_ms: float, rows: dict, expert_steps: float | None) -> dict:
    """Hours for one row of the full mode (4 tasks x 3 seeds x 4 evaluations x 20 rollouts, 20k BC steps),
    with every episode as long as an expert's (lower bound) or hitting the 200-step cap (upper bound)."""
    short = expert_steps or (70.0 if suite.name == "metaworld" else 100.0)
    episodes = 4 * 3 * 4 * 20
    out = {}
    for name, r in rows.items():
        train_h = 4 * 3 * 20000 * r["train_step_ms"] / 3.6e6
        low = episodes * short * r["step_ms"] / 3.6e6 + train_h
        high = episodes * 200 * r["step_ms"] / 3.6e6 + train_h
        out[name] = {"hours_per_row_low": round(low, 2), "hours_per_row_high": round(high, 2)}
    return out


if __name__ == "__main__":
    main()
