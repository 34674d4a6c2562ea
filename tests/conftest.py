"""Shared fixtures: a tiny random CLIP backbone and a synthetic feature corpus (no video decoding),
so training and evaluation tests run in seconds."""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from roboact.data.manifest import ClipRecord, write_manifest


@pytest.fixture(scope="session")
def tiny_clip_backbone(tmp_path_factory):
    from roboact.backbones import load_backbone
    from roboact.backbones.hf_clip import make_tiny_clip

    d = make_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))
    return load_backbone("hf-clip", path=str(d))


ACTIONS = ["open", "close", "push", "pull"]
OBJECTS = ["drawer", "door", "window"]


def make_feature_corpus(root: Path, backbone, clips_per_pair: int = 6, n: int = 8, seed: int = 0,
                        held_out: tuple = (("push", "window"),)) -> tuple[Path, Path]:
    """Manifest + feature cache where the action is how features *move* over time and the object is
    what they *are*; 'close' is 'open' played backwards. Held-out (action, object) pairs go to test."""
    from roboact.data import features as fc

    g = torch.Generator().manual_seed(seed)
    d = backbone.image_dim
    act_dir = torch.randn(len(ACTIONS), d, generator=g)
    act_dir[1] = -act_dir[0]       # close = reversed open
    act_dir[3] = -act_dir[2]       # pull = reversed push
    obj_vec = 2 * torch.randn(len(OBJECTS), d, generator=g)
    rows, feats = [], []
    for (ai, a), (oi, o) in itertools.product(enumerate(ACTIONS), enumerate(OBJECTS)):
        for k in range(clips_per_pair):
            t = torch.linspace(0, 1, n)[:, None]
            x = obj_vec[oi] + t * act_dir[ai] + 0.3 * torch.randn(n, d, generator=g)
            split = "test" if (a, o) in held_out else ("val" if k == 0 else "train")
            cid = f"{a}-{o}/{k:03d}"
            rows.append(ClipRecord(clip_id=cid, path=f"videos/{cid}.mp4", subject="Robot", action=a, object=o,
                                   task=f"{a}-{o}", camera="cam0", seed=k, num_frames=n, fps=20.0, split=split,
                                   source="synthetic", episode=cid))
            feats.append(x)
    manifest = root / "manifest.jsonl"
    write_manifest(manifest, rows)
    folder = fc.cache_dir(root / "cache", backbone.name)
    folder.mkdir(parents=True, exist_ok=True)
    identity = fc.cache_identity(backbone, n)
    fc.claim_identity(folder, identity)
    ids = [r.clip_id for r in rows]
    fc.write_shard(folder, "r000-00000", ids, torch.stack(feats), torch.arange(n).repeat(len(ids), 1),
                   torch.full((len(ids),), n), [], fc.identity_hash(identity))
    fc.build_index(folder, str(manifest))
    return manifest, root / "cache"


@pytest.fixture(scope="session")
def feature_corpus(tmp_path_factory, tiny_clip_backbone):
    return make_feature_corpus(tmp_path_factory.mktemp("corpus"), tiny_clip_backbone)


@pytest.fixture(scope="session")
def expert_chain():
    """(start, run): the committed chain evaluation start 0 (docs/results/chain/chain_starts_eval.json, which
    tests/sim/test_chain.py checks against the construction) and the scripted experts' four-stage chain from it,
    every observation kept at 64 px. Recorded once per session (~20-40 s) for the chain and chain-policy tests."""
    pytest.importorskip("libero.libero", reason="needs roboact[sim]")
    from roboact.sim.chain.demos import TAIL_STEPS
    from roboact.sim.chain.rollout import chain_env, run_chain
    from roboact.sim.chain.starts import ChainStarts

    start = ChainStarts.load(Path(__file__).parents[1] / "docs/results/chain/chain_starts_eval.json")[0]
    return start, run_chain(chain_env(64, ("agentview",)), start, keep=True, tail=TAIL_STEPS)
