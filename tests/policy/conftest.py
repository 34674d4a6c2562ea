"""Fixtures for the policy benchmark: tiny RoboAct-CLIP checkpoints on the tiny CLIP backbone, and synthetic
demo files in the `roboact demos` layout (no simulator needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from roboact.models import RoboActCLIP, RoboActConfig
from roboact.models.encoder import RoboActEncoder


def tiny_config(bb, **kw) -> RoboActConfig:
    base = dict(backbone="hf-clip", backbone_path=bb.path, image_dim=bb.image_dim, text_dim=bb.text_dim, n_frames=6,
                temporal_width=32, temporal_heads=4, fusion_hidden=64, embed_dim=16, branch_hidden=32, text_hidden=32,
                aux_hidden=16, attn_heads=2, actions=["open", "push"], objects=["drawer", "plate"], recomb_size=8)
    base.update(kw)
    return RoboActConfig(**base)


def corpus_manifest(path: Path, tasks=("drawer-close-v3",)) -> Path:
    """A stand-in training manifest (files need not exist: only its rows are read) with clips of `tasks`."""
    from roboact.data.manifest import ClipRecord, write_manifest

    write_manifest(path, [ClipRecord(clip_id=f"{t}/0", path=f"videos/{t}/0.mp4", subject="Robot", action="close",
                                     object="drawer", task=t, source="metaworld") for t in tasks])
    return path


def trained_on(manifest: Path) -> dict:
    """What `roboact train` records in a checkpoint's config.json about its data."""
    return {"train": {"data": {"manifest": str(manifest), "train_splits": ["train"]}}}


def save_checkpoint(bb, folder: Path, seed: int = 0, extra: dict | None = None, **kw) -> Path:
    """By default the checkpoint records a training manifest without any benchmark task, as one pretrained on
    a corpus of `roboact simulate metaworld` would; `roboact policy` refuses one whose corpus is unknown."""
    torch.manual_seed(seed)
    if extra is None:
        extra = trained_on(corpus_manifest(Path(folder).parent / f"{Path(folder).name}_corpus.jsonl"))
    RoboActEncoder(RoboActCLIP(tiny_config(bb, **kw)), bb).save_pretrained(folder, extra=extra)
    return folder


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory, tiny_clip_backbone):
    """{variant: folder}: full, no_temporal (ablation 1), no_disentangle (ablation 2)."""
    root = tmp_path_factory.mktemp("policy_ckpts")
    return {"full": save_checkpoint(tiny_clip_backbone, root / "full"),
            "no_temporal": save_checkpoint(tiny_clip_backbone, root / "no_temporal", temporal=False),
            "no_disentangle": save_checkpoint(tiny_clip_backbone, root / "no_disentangle", disentangle=False)}


def write_metaworld_demos(path: Path, n: int = 3, t: int = 12, size: int = 32, seed0: int = 0) -> Path:
    """A demo file shaped like `roboact demos --suite metaworld` output (corner camera, 4-d proprio/actions)."""
    from roboact.sim.demos import Episode, write_demos

    rng = np.random.default_rng(seed0)
    eps = []
    for i in range(n):
        vec = rng.normal(size=(t, 39))
        eps.append(Episode(actions=rng.uniform(-1.5, 1.5, (t, 4)), states=rng.normal(size=(t, 10)),
                           rewards=np.zeros(t), dones=np.eye(t)[-1],
                           obs={"corner_rgb": rng.integers(0, 255, (t, size, size, 3), dtype=np.uint8),
                                "ee_pos": vec[:, :3], "gripper_states": vec[:, 3:4], "object_state": vec},
                           attrs={"seed": seed0 + i}))
    return write_demos(path, eps, {"task": "metaworld/plate-slide-v3"})



def policy_cli(argv) -> int:
    """`roboact policy ARGV` in this process (cells run in-process with one worker, so tests can spy on them)."""
    import argparse

    from roboact.policy.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["policy", *map(str, argv)])
    return args.func(args)

@pytest.fixture
def demos_dir(tmp_path) -> Path:
    write_metaworld_demos(tmp_path / "demos" / "metaworld" / "plate-slide-v3_demo.hdf5")
    return tmp_path / "demos"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small models on a shared 2-core CI box: one thread each is much faster than contended OpenMP pools."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
